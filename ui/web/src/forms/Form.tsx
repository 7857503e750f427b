// The generic configuration form: one renderer for every manifest Field type, never a form per component.
import { createContext, memo, useContext, useEffect, useState, type ReactNode } from "react";
import { ExprInput } from "../expressions/ExprInput";
import type { SuggestContext } from "../expressions/suggest";
import type { ExpressionResult, Field, JsonObject, JsonValue } from "../types";
import { effectiveValue, isRequired, isVisible } from "./conditions";

export interface FormContextValue {
  errors: Map<string, string[]>;
  suggestions: () => SuggestContext;
  preview: (path: string, text: string) => Promise<ExpressionResult>;
}

export const FormContext = createContext<FormContextValue>({
  errors: new Map(),
  suggestions: () => ({ upstream: [], rootPayload: undefined, previous: undefined, functions: [] }),
  preview: () => Promise.resolve({ ok: false, error: "no preview" }),
});

type Change = (value: JsonValue | undefined) => void;

function asObject(value: JsonValue | undefined): JsonObject {
  return value && typeof value === "object" && !Array.isArray(value) ? value : {};
}

function ErrorText({ path }: { path: string }) {
  const messages = useContext(FormContext).errors.get(path);
  if (!messages) return null;
  return (
    <div className="field-error" data-testid={`field-error-${path}`}>
      {messages.join("; ")}
    </div>
  );
}

function Label({ field, required, htmlFor }: { field: Field; required: boolean; htmlFor?: string }) {
  return (
    <label className="field-label" htmlFor={htmlFor}>
      {field.label || field.name}
      {required && (
        <span className="required" title="required">
          *
        </span>
      )}
    </label>
  );
}

function bounds(field: Field): string {
  if (field.type !== "number") return "";
  const parts: string[] = [];
  if (field.integer) parts.push("integer");
  if (field.min !== undefined && field.min !== null) parts.push(`≥ ${field.min}`);
  if (field.max !== undefined && field.max !== null) parts.push(`≤ ${field.max}`);
  return parts.join(", ");
}

function Help({ field }: { field: Field }) {
  const range = bounds(field);
  if (!field.description && !range) return null;
  return (
    <div className="help">
      {field.description}
      {range && <span className="bounds"> ({range})</span>}
    </div>
  );
}

function numberText(value: JsonValue | undefined): string {
  return value === undefined || value === null ? "" : String(value);
}

function NumberInput({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  // The draft keeps what is typed ("1." or an expression) while the document holds a number.
  const [draft, setDraft] = useState(numberText(value));
  useEffect(() => {
    setDraft((current) => (parseNumber(current, field) === value ? current : numberText(value)));
  }, [value, field]);
  const invalid = draft !== "" && typeof parseNumber(draft, field) === "string" && !draft.includes("{{");
  return (
    <input
      className={`input${invalid ? " invalid" : ""}`}
      data-testid={`field-${path}`}
      type="text"
      inputMode={field.integer ? "numeric" : "decimal"}
      value={draft}
      placeholder={field.default !== undefined ? String(field.default) : field.placeholder}
      onChange={(event) => {
        setDraft(event.target.value);
        onChange(parseNumber(event.target.value, field));
      }}
      title={[field.min !== null && field.min !== undefined ? `min ${field.min}` : "", field.max !== null && field.max !== undefined ? `max ${field.max}` : "", field.integer ? "integer" : ""]
        .filter(Boolean)
        .join(", ")}
    />
  );
}

function parseNumber(text: string, field: Field): JsonValue | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const number = Number(trimmed);
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed) && Number.isFinite(number)) return number;
  // Anything else (an expression, or a typo the validator will name) is kept as typed.
  return field.supportsExpressions || trimmed ? text : undefined;
}

function ScalarInput({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  const form = useContext(FormContext);
  const text = value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);
  const setText = (next: string) => onChange(next === "" ? undefined : next);
  const placeholder = field.placeholder ?? (typeof field.default === "string" ? field.default : undefined);
  if (field.sensitive) {
    return (
      <input
        className="input"
        data-testid={`field-${path}`}
        type="password"
        autoComplete="off"
        value={text}
        placeholder={placeholder}
        onChange={(event) => setText(event.target.value)}
      />
    );
  }
  const multiline = field.type === "text" || field.type === "code";
  if (field.supportsExpressions) {
    return (
      <ExprInput
        path={path}
        value={text}
        multiline={multiline}
        code={field.type === "code"}
        placeholder={placeholder}
        onChange={setText}
        context={form.suggestions}
        preview={(t) => form.preview(path, t)}
      />
    );
  }
  const props = {
    className: field.type === "code" ? "input code" : "input",
    "data-testid": `field-${path}`,
    value: text,
    placeholder,
    spellCheck: false,
    onChange: (event: { target: { value: string } }) => setText(event.target.value),
  };
  return multiline ? <textarea {...props} rows={field.type === "code" ? 8 : 3} /> : <input {...props} type="text" />;
}

function SelectInput({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  const current = effectiveValue(field, value);
  const options = field.options ?? [];
  const known = options.some((option) => option.value === current);
  return (
    <select
      className="input"
      data-testid={`field-${path}`}
      value={current === undefined || current === null ? "" : String(current)}
      onChange={(event) => onChange(event.target.value === "" ? undefined : event.target.value)}
    >
      {(field.default === undefined || !known) && <option value="">{current === undefined ? "—" : String(current)}</option>}
      {options.map((option) => (
        <option key={option.value} value={option.value}>
          {option.label || option.value}
        </option>
      ))}
    </select>
  );
}

function BooleanInput({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  const checked = effectiveValue(field, value) === true;
  return (
    <label className="checkbox">
      <input
        type="checkbox"
        data-testid={`field-${path}`}
        checked={checked}
        onChange={(event) => {
          const next = event.target.checked;
          // Unchecking a field whose default is false leaves it out of the document.
          onChange(next === (field.default === true) ? undefined : next);
        }}
      />
      <span>{field.label || field.name}</span>
    </label>
  );
}

function FieldList({ fields, prefix, values, onChange }: { fields: Field[]; prefix: string; values: JsonObject; onChange: (name: string, value: JsonValue | undefined) => void }) {
  return (
    <>
      {fields.map((field) =>
        isVisible(field, fields, values) ? (
          <FieldRow
            key={field.name}
            field={field}
            path={prefix + field.name}
            value={values[field.name]}
            required={isRequired(field, fields, values)}
            onChange={(value) => onChange(field.name, value)}
          />
        ) : null,
      )}
    </>
  );
}

function ObjectInput({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  const values = asObject(value);
  const sub = field.fields ?? [];
  const setChild = (name: string, child: JsonValue | undefined) => {
    const next: JsonObject = { ...values };
    if (child === undefined) delete next[name];
    else next[name] = child;
    // An enabled togglable object stays (even empty); other objects vanish when emptied.
    onChange(Object.keys(next).length === 0 && !field.togglable ? undefined : next);
  };
  if (sub.length === 0) return <JsonInput path={path} value={value} onChange={onChange} />;
  return (
    <div className="object-fields">
      <FieldList fields={sub} prefix={`${path}.`} values={values} onChange={setChild} />
    </div>
  );
}

function JsonInput({ path, value, onChange }: { path: string; value: JsonValue | undefined; onChange: Change }) {
  // Free-form objects (a template payload) are edited as JSON text.
  const [draft, setDraft] = useState(value === undefined ? "" : JSON.stringify(value, null, 2));
  const [error, setError] = useState("");
  useEffect(() => {
    setDraft((current) => {
      try {
        if (current.trim() !== "" && JSON.stringify(JSON.parse(current)) === JSON.stringify(value)) return current;
      } catch {
        return current;
      }
      return value === undefined ? "" : JSON.stringify(value, null, 2);
    });
  }, [value]);
  return (
    <>
      <textarea
        className="input code"
        data-testid={`field-${path}`}
        rows={4}
        value={draft}
        spellCheck={false}
        placeholder="{}"
        onChange={(event) => {
          const text = event.target.value;
          setDraft(text);
          if (text.trim() === "") {
            setError("");
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(text) as JsonValue);
            setError("");
          } catch (problem) {
            setError(problem instanceof Error ? problem.message : "not JSON");
          }
        }}
      />
      {error && <div className="field-error">{error}</div>}
    </>
  );
}

function newItem(field: Field | undefined): JsonValue {
  if (!field) return "";
  if (field.type === "object") return {};
  if (field.type === "list") return [];
  if (field.type === "number") return field.default ?? 0;
  if (field.type === "boolean") return field.default ?? false;
  return field.default ?? "";
}

function ListInput({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  const items = Array.isArray(value) ? value : [];
  const itemField: Field = field.itemField ?? { name: "item", label: "Item", type: "string", supportsExpressions: field.supportsExpressions };
  const setItem = (index: number, item: JsonValue | undefined) => {
    const next = items.slice();
    next[index] = item === undefined ? newItem(itemField) : item;
    onChange(next);
  };
  const remove = (index: number) => {
    const next = items.filter((_, i) => i !== index);
    onChange(next.length === 0 ? undefined : next);
  };
  return (
    <div className="list-field">
      {items.map((item, index) => (
        <div className="list-item" key={index}>
          <div className="list-item-head">
            <span className="muted">
              {itemField.label || "Item"} {index + 1}
            </span>
            <button type="button" className="link danger" data-testid={`list-remove-${path}.${index}`} onClick={() => remove(index)}>
              remove
            </button>
          </div>
          <FieldControl field={itemField} path={`${path}.${index}`} value={item} onChange={(next) => setItem(index, next)} />
          <ErrorText path={`${path}.${index}`} />
        </div>
      ))}
      <button type="button" className="btn small" data-testid={`list-add-${path}`} onClick={() => onChange([...items, newItem(itemField)])}>
        + Add {itemField.label || "item"}
      </button>
    </div>
  );
}

function FieldControl({ field, path, value, onChange }: { field: Field; path: string; value: JsonValue | undefined; onChange: Change }) {
  switch (field.type) {
    case "number":
      return <NumberInput field={field} path={path} value={value} onChange={onChange} />;
    case "boolean":
      return <BooleanInput field={field} path={path} value={value} onChange={onChange} />;
    case "select":
      return <SelectInput field={field} path={path} value={value} onChange={onChange} />;
    case "object":
      return <ObjectInput field={field} path={path} value={value} onChange={onChange} />;
    case "list":
      return <ListInput field={field} path={path} value={value} onChange={onChange} />;
    case "json":
      return <JsonInput path={path} value={value} onChange={onChange} />;
    default:
      return <ScalarInput field={field} path={path} value={value} onChange={onChange} />;
  }
}

function Row({ children, path, type }: { children: ReactNode; path: string; type: string }) {
  return (
    <div className={`field field-${type}`} data-path={path}>
      {children}
    </div>
  );
}

const FieldRow = memo(function FieldRow({
  field,
  path,
  value,
  required,
  onChange,
}: {
  field: Field;
  path: string;
  value: JsonValue | undefined;
  required: boolean;
  onChange: Change;
}) {
  if (field.type === "boolean") {
    return (
      <Row path={path} type={field.type}>
        <FieldControl field={field} path={path} value={value} onChange={onChange} />
        <Help field={field} />
        <ErrorText path={path} />
      </Row>
    );
  }
  if (field.type === "object" && field.togglable) {
    const enabled = value !== undefined;
    return (
      <Row path={path} type="object">
        <label className="checkbox toggle">
          <input
            type="checkbox"
            data-testid={`field-${path}`}
            checked={enabled}
            onChange={(event) => onChange(event.target.checked ? {} : undefined)}
          />
          <span className="field-label">{field.label || field.name}</span>
        </label>
        <Help field={field} />
        {enabled && <FieldControl field={field} path={path} value={value} onChange={onChange} />}
        <ErrorText path={path} />
      </Row>
    );
  }
  return (
    <Row path={path} type={field.type}>
      <Label field={field} required={required} />
      <FieldControl field={field} path={path} value={value} onChange={onChange} />
      <Help field={field} />
      <ErrorText path={path} />
    </Row>
  );
});

/** The whole configuration form of one node. */
export function ConfigForm({
  fields,
  values,
  onChange,
}: {
  fields: Field[];
  values: JsonObject;
  onChange: (path: string, value: JsonValue | undefined) => void;
}) {
  return (
    <div className="config-form">
      <FieldList fields={fields} prefix="" values={values} onChange={onChange} />
    </div>
  );
}
