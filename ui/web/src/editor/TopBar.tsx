// The top bar: tabs, the canvas's name and file commands, undo/redo, layout, issues and Run.
import { useEffect, useState } from "react";
import { api, errorText } from "../api";
import { graphHandle } from "../graph/Graph";
import { navigate, type Route } from "../router";
import { useStore } from "../store";
import { autoLayout, exportCanvas, save } from "./actions";
import { ImportDialog, NewDialog, OpenDialog, RunDialog, SaveDialog } from "./dialogs";
import type { Issue } from "../types";
import { currentIssues, editor, redo, select, undo } from "./state";

type Dialog = "" | "open" | "save" | "new" | "import" | "run";

async function suggestedPath(): Promise<string> {
  const name = editor.get().doc.metadata.name || "canvas";
  try {
    const { files } = await api.canvases();
    const own = files.find((file) => !file.example);
    if (own) return own.path.replace(/[^/]*$/, `${name}.yaml`);
  } catch {
    // No suggestion then; the user types a path.
  }
  return "";
}

function Tab({ id, label, active, href }: { id: string; label: string; active: boolean; href: string }) {
  return (
    <a className={`tab${active ? " active" : ""}`} data-testid={id} href={href}>
      {label}
    </a>
  );
}

export function TopBar({ route }: { route: Route }) {
  const name = useStore(editor, (s) => s.doc.metadata.name);
  const path = useStore(editor, (s) => s.path);
  const issues = useStore(editor, (s) => s.issues);
  const canUndo = useStore(editor, (s) => s.past.length > 0);
  const canRedo = useStore(editor, (s) => s.future.length > 0);
  const status = useStore(editor, (s) => s.status);
  // Identity is enough: undo back to the saved state restores the very same document object.
  const dirty = useStore(editor, (s) => s.savedDoc !== null && s.savedDoc !== s.doc);
  const [dialog, setDialog] = useState<Dialog>("");
  const [savePath, setSavePath] = useState("");
  const [runError, setRunError] = useState<Issue[] | null>(null);
  const [problem, setProblem] = useState("");
  const [showIssues, setShowIssues] = useState(false);
  const onEditor = route.page === "editor";
  const hasGraph = onEditor || route.page === "run";

  useEffect(() => setRunError(null), [issues]);
  useEffect(() => {
    if (!showIssues) return;
    const close = (event: MouseEvent) => {
      const target = event.target as HTMLElement | null;
      if (!target?.closest(".issues-menu, [data-testid='issues-badge']")) setShowIssues(false);
    };
    document.addEventListener("mousedown", close);
    return () => document.removeEventListener("mousedown", close);
  }, [showIssues]);

  const onSave = async () => {
    setProblem("");
    const current = editor.get().path;
    if (current) {
      try {
        await save(current);
      } catch (failure) {
        setProblem(errorText(failure));
      }
      return;
    }
    setSavePath(await suggestedPath());
    setDialog("save");
  };

  const onRun = async () => {
    setRunError(null);
    if (!onEditor) navigate("#/");
    const found = await currentIssues();
    if (found.length > 0) {
      setRunError(found);
      return;
    }
    setDialog("run");
  };

  const close = () => setDialog("");
  return (
    <>
      <header className="topbar">
        <div className="brand">
          <span className="logo">◆</span> daytonaflow
        </div>
        <nav className="tabs">
          <Tab id="tab-editor" label="Editor" active={onEditor} href="#/" />
          <Tab id="tab-runs" label="Runs" active={route.page === "runs" || route.page === "run"} href="#/runs" />
          <Tab id="tab-sandboxes" label="Sandboxes" active={route.page === "sandboxes"} href="#/sandboxes" />
        </nav>
        <div className="canvas-title" title={path ?? "not saved yet"} hidden={!onEditor}>
          <span data-testid="canvas-name">{name}</span>
          {dirty && <span className="dirty" title="unsaved changes">●</span>}
          {status && (
            <span className="save-status" data-testid="save-status">
              {status}
            </span>
          )}
        </div>
        <div className="toolbar">
          <span className="tool-group" hidden={!onEditor}>
          <button type="button" className="btn" data-testid="btn-new" onClick={() => setDialog("new")}>
            New
          </button>
          <button type="button" className="btn" data-testid="btn-open" onClick={() => setDialog("open")}>
            Open
          </button>
          <button type="button" className="btn" data-testid="btn-save" onClick={() => void onSave()}>
            Save
          </button>
          <button type="button" className="btn" data-testid="btn-import" onClick={() => setDialog("import")}>
            Import
          </button>
          <button type="button" className="btn" data-testid="btn-export" title="Download as JSON" onClick={() => exportCanvas("json").catch((f: unknown) => setProblem(errorText(f)))}>
            Export
          </button>
          <button type="button" className="btn" data-testid="btn-export-yaml" title="Download as YAML" onClick={() => exportCanvas("yaml").catch((f: unknown) => setProblem(errorText(f)))}>
            YAML
          </button>
          <span className="sep" />
          <button type="button" className="btn icon-btn" data-testid="btn-undo" disabled={!canUndo} title="Undo (Ctrl+Z)" onClick={undo}>
            ↶
          </button>
          <button type="button" className="btn icon-btn" data-testid="btn-redo" disabled={!canRedo} title="Redo (Ctrl+Shift+Z)" onClick={redo}>
            ↷
          </button>
          </span>
          {/* Fit serves every page with a graph: the editor and the run view. */}
          <button type="button" className="btn" data-testid="btn-fit" title="Fit the graph into view" hidden={!hasGraph} onClick={() => graphHandle.fit()}>
            Fit
          </button>
          <span className="tool-group" hidden={!onEditor}>
          <button type="button" className="btn" data-testid="btn-layout" title="Automatic layout" onClick={autoLayout}>
            Layout
          </button>
          <span className="sep" />
          <button
            type="button"
            className={`issues-badge${issues.length > 0 ? " bad" : " ok"}`}
            data-testid="issues-badge"
            title={issues.length > 0 ? `${issues.length} issue(s): click to list them` : "no issues"}
            onClick={() => setShowIssues(issues.length > 0 && !showIssues)}
          >
            {issues.length}
          </button>
          <button type="button" className="btn primary run" data-testid="btn-run" onClick={() => void onRun()}>
            ▶ Run
          </button>
          </span>
        </div>
      </header>
      {showIssues && issues.length > 0 && onEditor && (
        <div className="issues-menu" data-testid="issues-list">
          {issues.map((issue, index) => (
            <button
              type="button"
              key={index}
              onClick={() => {
                select(issue.node || null);
                setShowIssues(false);
              }}
            >
              {issue.text}
            </button>
          ))}
        </div>
      )}
      {runError && (
        <div className="banner error" data-testid="run-error">
          <strong>Run refused: fix these issues first</strong>
          <button type="button" className="link" onClick={() => setRunError(null)} aria-label="dismiss">
            ✕
          </button>
          <div className="issue-lines">
            {runError.map((issue, index) => (
              // Each problem leads to its node, as in the issues list.
              <button type="button" className="issue-line" key={index} onClick={() => select(issue.node || null)}>
                {issue.text}
              </button>
            ))}
          </div>
        </div>
      )}
      {problem && (
        <div className="banner error">
          <pre>{problem}</pre>
          <button type="button" className="link" onClick={() => setProblem("")} aria-label="dismiss">
            ✕
          </button>
        </div>
      )}
      {dialog === "open" && <OpenDialog onClose={close} />}
      {dialog === "save" && <SaveDialog onClose={close} initial={savePath} />}
      {dialog === "new" && <NewDialog onClose={close} />}
      {dialog === "import" && <ImportDialog onClose={close} />}
      {dialog === "run" && <RunDialog onClose={close} />}
    </>
  );
}
