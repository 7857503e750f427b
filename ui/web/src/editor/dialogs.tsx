// The file and run dialogs of the top bar.
import { useEffect, useRef, useState, type ReactNode } from "react";
import { api, errorText } from "../api";
import { navigate } from "../router";
import type { CanvasFile, JsonValue } from "../types";
import { importText, newEmpty, newFromExample, openPath, save } from "./actions";
import { editor } from "./state";

export function Modal({ title, onClose, children, testid }: { title: string; onClose: () => void; children: ReactNode; testid?: string }) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="modal-backdrop" onMouseDown={(event) => event.target === event.currentTarget && onClose()}>
      <div className="modal" role="dialog" aria-label={title} data-testid={testid}>
        <div className="modal-head">
          <h2>{title}</h2>
          <button type="button" className="link" onClick={onClose} aria-label="close">
            ✕
          </button>
        </div>
        {children}
      </div>
    </div>
  );
}

interface ListedFile extends CanvasFile {
  testid: string;
}

/** One entry per path (a CANVAS argument may also be an example); names made unique for the testids. */
function listed(files: CanvasFile[]): ListedFile[] {
  const byPath = new Map<string, CanvasFile>();
  for (const file of files) {
    const seen = byPath.get(file.path);
    byPath.set(file.path, seen ? { ...seen, example: seen.example || file.example } : file);
  }
  const names = new Map<string, number>();
  return [...byPath.values()].map((file) => {
    const count = (names.get(file.name) ?? 0) + 1;
    names.set(file.name, count);
    return { ...file, testid: count === 1 ? file.name : `${file.name}-${count}` };
  });
}

function useCanvasFiles(): { files: ListedFile[]; error: string } {
  const [files, setFiles] = useState<ListedFile[]>([]);
  const [error, setError] = useState("");
  useEffect(() => {
    api.canvases().then(
      (result) => setFiles(listed(result.files)),
      (problem: unknown) => setError(errorText(problem)),
    );
  }, []);
  return { files, error };
}

export function OpenDialog({ onClose }: { onClose: () => void }) {
  const { files, error } = useCanvasFiles();
  const [path, setPath] = useState("");
  const [problem, setProblem] = useState("");
  const open = async (target: string, example = false) => {
    try {
      // An example opens as a copy: Save then asks where, and the installed example stays as it is.
      await (example ? newFromExample(target) : openPath(target));
      onClose();
    } catch (failure) {
      setProblem(errorText(failure));
    }
  };
  return (
    <Modal title="Open canvas" onClose={onClose} testid="open-dialog">
      {error && <div className="field-error">{error}</div>}
      <ul className="file-list">
        {files.map((file) => (
          <li key={file.path}>
            <button type="button" className="file-item" data-testid={`open-file-${file.testid}`} onClick={() => void open(file.path, file.example)}>
              <span className="file-name">{file.name}</span>
              {file.example && <span className="pill">example</span>}
              <span className="muted small">{file.path}</span>
            </button>
          </li>
        ))}
      </ul>
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          if (path.trim()) void open(path.trim());
        }}
      >
        <input className="input" data-testid="open-path" placeholder="/path/to/canvas.yaml" value={path} onChange={(e) => setPath(e.target.value)} />
        <button type="submit" className="btn primary" data-testid="open-confirm">
          Open
        </button>
      </form>
      {problem && <pre className="field-error">{problem}</pre>}
    </Modal>
  );
}

export function SaveDialog({ onClose, initial }: { onClose: () => void; initial: string }) {
  const [path, setPath] = useState(initial);
  const [problem, setProblem] = useState("");
  return (
    <Modal title="Save canvas" onClose={onClose} testid="save-dialog">
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          if (!path.trim()) return setProblem("a path is required");
          save(path.trim()).then(onClose, (failure: unknown) => setProblem(errorText(failure)));
        }}
      >
        <input autoFocus className="input" data-testid="save-path" placeholder="/path/to/canvas.yaml" value={path} onChange={(e) => setPath(e.target.value)} />
        <button type="submit" className="btn primary" data-testid="save-confirm">
          Save
        </button>
      </form>
      <p className="muted small">YAML or JSON by the file's extension. Saving an invalid canvas keeps it as a draft.</p>
      {problem && <pre className="field-error">{problem}</pre>}
    </Modal>
  );
}

export function NewDialog({ onClose }: { onClose: () => void }) {
  const { files, error } = useCanvasFiles();
  const [problem, setProblem] = useState("");
  return (
    <Modal title="New canvas" onClose={onClose} testid="new-dialog">
      <button
        type="button"
        className="file-item"
        data-testid="new-empty"
        onClick={() => {
          newEmpty();
          onClose();
        }}
      >
        <span className="file-name">Empty canvas</span>
        <span className="muted small">a Manual Run trigger only</span>
      </button>
      <h3 className="palette-group">From an example</h3>
      {error && <div className="field-error">{error}</div>}
      <ul className="file-list">
        {files
          .filter((file) => file.example)
          .map((file) => (
            <li key={file.path}>
              <button
                type="button"
                className="file-item"
                data-testid={`new-example-${file.testid}`}
                onClick={() => newFromExample(file.path).then(onClose, (failure: unknown) => setProblem(errorText(failure)))}
              >
                <span className="file-name">{file.name}</span>
                <span className="muted small">{file.path}</span>
              </button>
            </li>
          ))}
      </ul>
      {problem && <pre className="field-error">{problem}</pre>}
    </Modal>
  );
}

export function ImportDialog({ onClose }: { onClose: () => void }) {
  const [text, setText] = useState("");
  const [problem, setProblem] = useState("");
  const fileInput = useRef<HTMLInputElement>(null);
  return (
    <Modal title="Import canvas" onClose={onClose} testid="import-dialog">
      <p className="muted small">Paste a canvas (YAML or JSON) or choose a file.</p>
      <input
        ref={fileInput}
        type="file"
        data-testid="import-file"
        accept=".yaml,.yml,.json,application/json,text/yaml"
        onChange={(event) => {
          const file = event.target.files?.[0];
          if (file) void file.text().then(setText);
        }}
      />
      <textarea className="input code" data-testid="import-text" rows={12} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      <div className="row end">
        <button
          type="button"
          className="btn primary"
          data-testid="import-confirm"
          onClick={() => importText(text).then(onClose, (failure: unknown) => setProblem(errorText(failure)))}
        >
          Import
        </button>
      </div>
      {problem && <pre className="field-error">{problem}</pre>}
    </Modal>
  );
}

function defaultInput(): string {
  const start = editor.get().doc.spec.nodes.find((node) => node.component === "start");
  const templates = start?.configuration?.templates;
  if (Array.isArray(templates) && templates.length > 0) {
    const first = templates[0];
    const payload = first && typeof first === "object" && !Array.isArray(first) ? first.payload : undefined;
    if (payload !== undefined) return JSON.stringify(payload, null, 2);
  }
  return "{}";
}

export function RunDialog({ onClose }: { onClose: () => void }) {
  const [input, setInput] = useState(defaultInput);
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);
  const [keep, setKeep] = useState(false);
  const start = async () => {
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(input.trim() || "{}") as JsonValue;
    } catch (failure) {
      return setProblem(`input is not JSON: ${failure instanceof Error ? failure.message : String(failure)}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return setProblem("input must be a JSON object");
    setBusy(true);
    try {
      const { run } = await api.startRun(editor.get().doc, parsed, keep);
      onClose();
      navigate(`#/runs/${encodeURIComponent(run.id)}`);
    } catch (failure) {
      setProblem(errorText(failure));
      setBusy(false);
    }
  };
  return (
    <Modal title="Run canvas" onClose={onClose} testid="run-dialog">
      <label className="field-label" htmlFor="run-input">
        Input (JSON object, read by <code>root().data</code>)
      </label>
      <textarea id="run-input" className="input code" data-testid="run-input" rows={8} value={input} onChange={(e) => setInput(e.target.value)} spellCheck={false} />
      <div className="row end">
        <label className="checkbox small" title="Leave the sandboxes the run still holds at its end (see the Sandboxes page)">
          <input type="checkbox" data-testid="run-keep" checked={keep} onChange={(e) => setKeep(e.target.checked)} />
          keep sandboxes
        </label>
        <button type="button" className="btn primary" data-testid="run-start" disabled={busy} onClick={() => void start()}>
          {busy ? "Starting…" : "Start run"}
        </button>
      </div>
      {problem && (
        <pre className="field-error" data-testid="run-error">
          {problem}
        </pre>
      )}
    </Modal>
  );
}
