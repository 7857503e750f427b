// The right-hand inspector: the selected node's name and generated configuration form, its issues.
import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, type ArmedTrigger } from "../api";
import { suggestContextFor } from "../expressions/context";
import { visiblePaths } from "../forms/conditions";
import { ConfigForm, FormContext, type FormContextValue } from "../forms/Form";
import { Icon } from "../graph/icons";
import { Markdown } from "../graph/markdown";
import { accentColour } from "../graph/nodes";
import { palette } from "../palette";
import { useStore } from "../store";
import type { CanvasNode, Issue } from "../types";
import { remove, rename, setCanvasName, setField } from "./actions";
import { editor } from "./state";

const CONFIG_PREFIX = "configuration.";

/** Whether `daytonaflow up` keeps this trigger armed now (asked when the node is selected). */
function ArmedStatus({ node }: { node: CanvasNode }) {
  const canvas = useStore(editor, (s) => s.doc.metadata.name);
  const [armed, setArmed] = useState<ArmedTrigger | null | undefined>(undefined);
  useEffect(() => {
    let live = true;
    api.triggers(canvas).then(
      (reply) => live && setArmed(reply.triggers.find((trigger) => trigger.nodeId === node.id) ?? null),
      () => live && setArmed(null),
    );
    return () => {
      live = false;
    };
  }, [canvas, node.id]);
  if (armed === undefined) return null;
  return (
    <div className="field" data-testid="armed-trigger">
      <div className="field-label">daytonaflow up</div>
      {armed === null && <div className="help">Not armed: run <code>daytonaflow up</code> with this canvas to keep it armed.</div>}
      {armed?.url && (
        <div className="help">
          Armed: <code>POST {armed.url}</code>
        </div>
      )}
      {armed?.nextFire && <div className="help">Armed: next fire {new Date(armed.nextFire).toLocaleString()}</div>}
    </div>
  );
}

function NodeInspector({ node, issues }: { node: CanvasNode; issues: Issue[] }) {
  const entry = useStore(palette, (s) => s.byName.get(node.component));
  const fields = entry?.fields ?? [];
  const values = node.configuration ?? {};
  const shown = useMemo(() => visiblePaths(fields, values), [fields, values]);

  const { errors, nodeLevel } = useMemo(() => {
    const errors = new Map<string, string[]>();
    const nodeLevel: Issue[] = [];
    for (const issue of issues) {
      const path = issue.field.startsWith(CONFIG_PREFIX) ? issue.field.slice(CONFIG_PREFIX.length) : "";
      if (path && shown.has(path)) errors.set(path, [...(errors.get(path) ?? []), issue.message]);
      else nodeLevel.push(issue);
    }
    return { errors, nodeLevel };
  }, [issues, shown]);

  const suggestions = useCallback(() => suggestContextFor(editor.get().doc, node.id), [node.id]);
  const preview = useCallback(
    (path: string, text: string) => api.expression(editor.get().doc, node.id, `${CONFIG_PREFIX}${path}`, text),
    [node.id],
  );
  const context: FormContextValue = useMemo(() => ({ errors, suggestions, preview }), [errors, suggestions, preview]);
  const onChange = useCallback((path: string, value: Parameters<typeof setField>[2]) => setField(node.id, path, value), [node.id]);

  return (
    <>
      <div className="inspector-head" style={{ borderColor: accentColour(entry?.manifest.color) }}>
        <Icon name={entry?.manifest.icon} size={18} />
        <div>
          <div className="inspector-title">{entry?.manifest.label ?? node.component}</div>
          <div className="muted small">{node.component}</div>
        </div>
      </div>
      {entry?.manifest.description && <p className="muted small">{entry.manifest.description}</p>}
      <div className="field">
        <label className="field-label" htmlFor="node-name">
          Name<span className="required">*</span>
        </label>
        <input id="node-name" className="input" data-testid="node-name" value={node.name} onChange={(event) => rename(node.id, event.target.value)} />
        <div className="help">
          id <code>{node.id}</code>
        </div>
      </div>
      {node.type === "TYPE_TRIGGER" && (node.component === "schedule" || node.component === "webhook") && <ArmedStatus node={node} />}
      {!entry && <div className="field-error">Unknown component “{node.component}”: its configuration is kept as it is.</div>}
      {nodeLevel.length > 0 && (
        <ul className="node-issues" data-testid="node-issues">
          {nodeLevel.map((issue, index) => (
            <li key={index}>{issue.field ? `${issue.field.replace(CONFIG_PREFIX, "")}: ${issue.message}` : issue.message}</li>
          ))}
        </ul>
      )}
      <FormContext.Provider value={context}>
        <ConfigForm fields={fields} values={values} onChange={onChange} />
      </FormContext.Provider>
      <div className="inspector-actions">
        <button type="button" className="btn danger" data-testid="delete-node" onClick={() => remove(new Set([node.id]), new Set())}>
          Delete node
        </button>
      </div>
      {entry?.manifest.documentation && (
        <details className="docs">
          <summary>Documentation</summary>
          <div className="doc-text">
            <Markdown text={entry.manifest.documentation} />
          </div>
        </details>
      )}
    </>
  );
}

function CanvasInspector({ issues }: { issues: Issue[] }) {
  const name = useStore(editor, (s) => s.doc.metadata.name);
  const path = useStore(editor, (s) => s.path);
  const count = useStore(editor, (s) => s.doc.spec.nodes.length);
  return (
    <>
      <div className="inspector-title">Canvas</div>
      <div className="field">
        <label className="field-label" htmlFor="canvas-name-input">
          Name<span className="required">*</span>
        </label>
        <input id="canvas-name-input" className="input" data-testid="canvas-name-input" value={name} onChange={(e) => setCanvasName(e.target.value)} />
      </div>
      <p className="muted small">
        {count} nodes · {path ?? "not saved yet"}
      </p>
      <p className="muted small">Select a node to configure it. Drag components from the palette, or double-click them.</p>
      {issues.length > 0 && (
        <ul className="node-issues" data-testid="node-issues">
          {issues.map((issue, index) => (
            <li key={index}>{issue.text}</li>
          ))}
        </ul>
      )}
    </>
  );
}

export function Inspector() {
  const selected = useStore(editor, (s) => s.selected);
  const node = useStore(editor, (s) => (s.selected ? s.doc.spec.nodes.find((n) => n.id === s.selected) : undefined));
  const allIssues = useStore(editor, (s) => s.issues);
  const issues = useMemo(() => allIssues.filter((issue) => (selected ? issue.node === selected : !issue.node)), [allIssues, selected]);
  let body: ReactNode;
  if (node) body = <NodeInspector key={node.id} node={node} issues={issues} />;
  else body = <CanvasInspector issues={issues} />;
  return (
    <aside className="inspector" data-testid="inspector">
      {body}
    </aside>
  );
}
