// A text input (or textarea) with expression autocomplete and, when it holds an expression, a preview.
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from "react";
import { suggest, type Suggestion, type SuggestContext } from "./suggest";
import { ExprPreview } from "./ExprPreview";

export function hasExpression(text: string): boolean {
  return text.includes("{{") || text.includes("<<");
}

interface Props {
  path: string;
  value: string;
  multiline: boolean;
  code: boolean;
  placeholder?: string;
  onChange: (text: string) => void;
  context: () => SuggestContext;
  preview: ((text: string) => Promise<import("../types").ExpressionResult>) | null;
}

export function ExprInput({ path, value, multiline, code, placeholder, onChange, context, preview }: Props) {
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const [items, setItems] = useState<Suggestion[]>([]);
  const [active, setActive] = useState(0);
  const pendingCaret = useRef<number | null>(null);

  const refresh = useCallback(() => {
    const element = ref.current;
    if (!element || document.activeElement !== element) return setItems([]);
    const caret = element.selectionStart ?? element.value.length;
    const next = suggest(element.value.slice(0, caret), context());
    setItems(next);
    setActive(0);
  }, [context]);

  useEffect(() => {
    if (pendingCaret.current !== null && ref.current) {
      ref.current.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
      refresh();
    }
  }, [value, refresh]);

  const apply = (item: Suggestion) => {
    const element = ref.current;
    if (!element) return;
    const caret = element.selectionStart ?? element.value.length;
    const start = caret - item.replace;
    const text = element.value.slice(0, start) + item.insert + element.value.slice(caret);
    pendingCaret.current = start + item.insert.length;
    onChange(text);
    element.focus();
  };

  const onKeyDown = (event: KeyboardEvent) => {
    if (items.length === 0) return;
    if (event.key === "ArrowDown") setActive((active + 1) % items.length);
    else if (event.key === "ArrowUp") setActive((active - 1 + items.length) % items.length);
    else if (event.key === "Enter" || event.key === "Tab") apply(items[active]);
    else if (event.key === "Escape") setItems([]);
    else return;
    event.preventDefault();
    event.stopPropagation();
  };

  const common = {
    ref,
    "data-testid": `field-${path}`,
    className: code ? "input code" : "input",
    value,
    placeholder,
    spellCheck: false,
    onChange: (event: { target: { value: string } }) => {
      onChange(event.target.value);
      // The caret moves after React commits the value; suggestions follow on the next frame.
      requestAnimationFrame(refresh);
    },
    onKeyDown,
    onClick: refresh,
    onKeyUp: (event: KeyboardEvent) => {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight" || event.key === "Home" || event.key === "End") refresh();
    },
    onBlur: () => setTimeout(() => setItems([]), 150),
  };

  return (
    <div className="expr">
      {multiline ? <textarea {...common} rows={code ? 8 : 3} /> : <input {...common} type="text" />}
      {items.length > 0 && (
        <ul className="expr-suggestions" data-testid="expr-suggestions" role="listbox">
          {items.map((item, index) => (
            <li
              key={`${item.label}-${index}`}
              data-testid={`expr-suggestion-${index}`}
              role="option"
              aria-selected={index === active}
              className={index === active ? "active" : ""}
              onMouseDown={(event) => {
                event.preventDefault();
                apply(item);
              }}
            >
              <span className="label">{item.label}</span>
              <span className="detail">{item.detail}</span>
            </li>
          ))}
        </ul>
      )}
      {preview && hasExpression(value) && <ExprPreview path={path} text={value} evaluate={preview} />}
    </div>
  );
}
