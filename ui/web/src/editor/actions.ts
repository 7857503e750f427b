// Editor commands shared by the top bar, the palette, keyboard shortcuts and dialogs.
import { api } from "../api";
import { addNode, connect, emptyCanvas, moveNodes, removeElements, updateNode, uniqueNodeName } from "../doc";
import { layeredLayout, missingPositions } from "../graph/layout";
import { graphHandle } from "../graph/Graph";
import { palette } from "../palette";
import type { CanvasDoc, JsonValue } from "../types";
import { setConfiguration } from "../doc";
import { commit, editor, LAST_PATH_KEY, loadDocument, mayDiscard, select } from "./state";

export async function openPath(path: string): Promise<void> {
  const { path: resolved, canvas } = await api.openCanvas(path);
  openDocument(canvas, resolved);
}

export function openDocument(canvas: CanvasDoc, path: string | null): void {
  if (!mayDiscard()) return;
  const doc = normalise(canvas);
  loadDocument(doc, path, missingPositions(doc.spec.nodes, doc.spec.edges));
}

/** Fills the containers the editor relies on, without touching any key the document has. */
function normalise(canvas: CanvasDoc): CanvasDoc {
  const spec = canvas.spec ?? { nodes: [], edges: [] };
  if (Array.isArray(spec.nodes) && Array.isArray(spec.edges) && canvas.metadata) return canvas;
  return {
    ...canvas,
    metadata: canvas.metadata ?? { name: "untitled" },
    spec: { ...spec, nodes: Array.isArray(spec.nodes) ? spec.nodes : [], edges: Array.isArray(spec.edges) ? spec.edges : [] },
  };
}

export function newEmpty(): void {
  openDocument(emptyCanvas(), null);
}

export async function newFromExample(path: string): Promise<void> {
  const { canvas } = await api.openCanvas(path);
  // A copy: saving asks for a new path instead of overwriting the example.
  openDocument(canvas, null);
}

export async function save(path: string): Promise<{ written: boolean }> {
  const doc = editor.get().doc;
  const result = await api.saveCanvas(path, doc);
  editor.set({ path: result.path, savedDoc: doc, status: result.written ? "saved" : "unchanged" });
  localStorage.setItem(LAST_PATH_KEY, result.path);
  return result;
}

function freeSpot(doc: CanvasDoc): { x: number; y: number } {
  const centre = graphHandle.centre();
  const occupied = (x: number, y: number) =>
    doc.spec.nodes.some((node) => {
      const at = node.position ?? editor.get().autoPositions[node.id];
      return at !== undefined && Math.abs(at.x - x) < 250 && Math.abs(at.y - y) < 110;
    });
  const start = { x: Math.round(centre.x - 110), y: Math.round(centre.y - 40) };
  for (let ring = 0; ring < 30; ring++) {
    for (const [dx, dy] of [
      [0, ring],
      [ring, 0],
      [0, -ring],
      [-ring, 0],
      [ring, ring],
    ]) {
      const x = start.x + dx * 280;
      const y = start.y + dy * 130;
      if (!occupied(x, y)) return { x, y };
    }
  }
  return start;
}

export function addComponent(name: string, position?: { x: number; y: number }): void {
  const entry = palette.get().byName.get(name);
  if (!entry) return;
  const doc = editor.get().doc;
  const { doc: next, id } = addNode(doc, entry.manifest, entry.kind, position ?? freeSpot(doc));
  commit(next);
  select(id);
}

export function rename(id: string, name: string): void {
  const doc = editor.get().doc;
  commit(updateNode(doc, id, (node) => ({ ...node, name })), `name:${id}`);
}

export function uniqueName(id: string, name: string): string {
  return uniqueNodeName(editor.get().doc, name, id);
}

export function setField(id: string, path: string, value: JsonValue | undefined): void {
  const doc = editor.get().doc;
  commit(updateNode(doc, id, (node) => setConfiguration(node, path, value)), `field:${id}:${path}`);
}

export function setCanvasName(name: string): void {
  const doc = editor.get().doc;
  commit({ ...doc, metadata: { ...doc.metadata, name } }, "canvas-name");
}

export function move(positions: Map<string, { x: number; y: number }>): void {
  commit(moveNodes(editor.get().doc, positions));
}

export function link(source: string, channel: string, target: string): void {
  commit(connect(editor.get().doc, source, channel, target));
}

export function remove(nodeIds: Set<string>, edgeKeys: Set<string>): void {
  commit(removeElements(editor.get().doc, nodeIds, edgeKeys));
  if (editor.get().selected && nodeIds.has(editor.get().selected!)) select(null);
}

export function autoLayout(): void {
  const doc = editor.get().doc;
  commit(moveNodes(doc, layeredLayout(doc.spec.nodes, doc.spec.edges)));
  editor.set({ autoPositions: {} });
  setTimeout(() => graphHandle.fit(), 50);
}

export async function exportCanvas(format: "yaml" | "json"): Promise<void> {
  const doc = editor.get().doc;
  const { text } = await api.exportCanvas(doc, format);
  const blob = new Blob([text], { type: format === "json" ? "application/json" : "application/yaml" });
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = `${doc.metadata.name || "canvas"}.${format === "json" ? "json" : "yaml"}`;
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function importText(text: string, format?: string): Promise<void> {
  const { canvas } = await api.importCanvas(text, format);
  openDocument(canvas, null);
}
