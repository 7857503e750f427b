// The editor's state: the open document, its file, undo/redo history, selection and issues.
import { api } from "../api";
import { emptyCanvas, sameJson, validationKey } from "../doc";
import { Store } from "../store";
import type { CanvasDoc, Issue } from "../types";

const HISTORY_LIMIT = 200;
// Keystrokes in one field within this window are one undo step.
const COALESCE_MS = 1000;
// Per UI session (its base path is new on each start): a later `daytonaflow ui other.yaml` on the
// same port opens its own CANVAS argument, not the file the previous session had open.
export const LAST_PATH_KEY = `daytonaflow.lastPath:${location.pathname}`;

export interface EditorState {
  doc: CanvasDoc;
  path: string | null;
  past: CanvasDoc[];
  future: CanvasDoc[];
  selected: string | null;
  issues: Issue[];
  /** Positions computed by the automatic layout for nodes the file gives none; display only. */
  autoPositions: Record<string, { x: number; y: number }>;
  /** Bumped when a new document is loaded, so the graph fits it into view. */
  generation: number;
  /** The document as last opened or saved (null: never saved). */
  savedDoc: CanvasDoc | null;
  status: string;
}

export const editor = new Store<EditorState>({
  doc: emptyCanvas(),
  path: null,
  past: [],
  future: [],
  selected: null,
  issues: [],
  autoPositions: {},
  generation: 0,
  savedDoc: null,
  status: "",
});

let lastCommit = { key: "", at: 0 };

/** Records `doc` as the new document; edits with the same `coalesce` key in a burst share one undo step. */
export function commit(doc: CanvasDoc, coalesce = ""): void {
  const state = editor.get();
  if (doc === state.doc) return;
  const now = Date.now();
  const merge = coalesce !== "" && lastCommit.key === coalesce && now - lastCommit.at < COALESCE_MS;
  lastCommit = { key: coalesce, at: now };
  editor.set({
    doc,
    past: merge ? state.past : [...state.past, state.doc].slice(-HISTORY_LIMIT),
    future: [],
  });
}

export function undo(): void {
  const { past, future, doc } = editor.get();
  if (past.length === 0) return;
  lastCommit = { key: "", at: 0 };
  editor.set({ doc: past[past.length - 1], past: past.slice(0, -1), future: [doc, ...future] });
}

export function redo(): void {
  const { past, future, doc } = editor.get();
  if (future.length === 0) return;
  lastCommit = { key: "", at: 0 };
  editor.set({ doc: future[0], past: [...past, doc], future: future.slice(1) });
}

export function loadDocument(doc: CanvasDoc, path: string | null, autoPositions: EditorState["autoPositions"]): void {
  lastCommit = { key: "", at: 0 };
  editor.set((state) => ({
    doc,
    path,
    past: [],
    future: [],
    selected: null,
    issues: [],
    autoPositions,
    generation: state.generation + 1,
    savedDoc: path ? doc : null,
    status: "",
  }));
  if (path) localStorage.setItem(LAST_PATH_KEY, path);
  else localStorage.removeItem(LAST_PATH_KEY);
}

/** Edits not saved to a file: a changed file, or a new canvas that has been edited at all. */
export function hasUnsavedChanges(state: EditorState = editor.get()): boolean {
  return state.savedDoc === null ? state.past.length > 0 : state.doc !== state.savedDoc;
}

/** Whether the open document may be replaced: nothing unsaved, or the user says so. */
export function mayDiscard(): boolean {
  return !hasUnsavedChanges() || window.confirm("Discard the unsaved changes to this canvas?");
}

export function select(id: string | null): void {
  editor.set({ selected: id });
}

// ---- validation: debounced, skipped when only positions changed ----

let validatedKey = "";
let pending: ReturnType<typeof setTimeout> | null = null;
let inflight: Promise<Issue[]> | null = null;

export function validateNow(): Promise<Issue[]> {
  if (pending) clearTimeout(pending);
  pending = null;
  const doc = editor.get().doc;
  const key = validationKey(doc);
  const request = api.validate(doc).then(
    ({ issues }) => {
      validatedKey = key;
      // A newer edit may have landed meanwhile; only the newest document's issues are shown.
      const current = editor.get();
      const newest = current.doc === doc || validationKey(current.doc) === key;
      // The same issues again keep their array: nothing downstream re-renders.
      if (newest && !sameJson(issues, current.issues)) editor.set({ issues });
      return issues;
    },
    (error: unknown) => {
      editor.set({ status: `validation failed: ${error instanceof Error ? error.message : String(error)}` });
      return editor.get().issues;
    },
  );
  inflight = request;
  return request;
}

/** The issues of the current document, validating first if it changed since the last validation. */
export async function currentIssues(): Promise<Issue[]> {
  const key = validationKey(editor.get().doc);
  if (key === validatedKey && !pending) {
    if (inflight) await inflight;
    return editor.get().issues;
  }
  return validateNow();
}

let seenDoc: CanvasDoc | null = null;
editor.subscribe(() => {
  const doc = editor.get().doc;
  if (doc === seenDoc) return;
  seenDoc = doc;
  const key = validationKey(doc);
  if (key === validatedKey) return;
  if (pending) clearTimeout(pending);
  pending = setTimeout(() => {
    pending = null;
    void validateNow();
  }, 300);
});
