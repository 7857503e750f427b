// Document → React Flow nodes/edges. Unchanged nodes keep their previous objects (and so their
// `measured` size and memoised render), which keeps a 200-node canvas fast while one node is edited.
import type { Edge, Node } from "@xyflow/react";
import { edgeChannel, edgeKey } from "../doc";
import type { PaletteEntry } from "../palette";
import type { CanvasDoc, CanvasNode, Channel, Execution } from "../types";
import type { CardData } from "./nodes";

export interface RunOverlay {
  states: Map<string, string>;
  executions: Map<string, Execution>;
  outputs: Map<string, string>;
  taken: Set<string>;
}

function channelsOf(node: CanvasNode, entry: PaletteEntry | undefined, doc: CanvasDoc): Channel[] {
  if (node.type === "TYPE_WIDGET") return [];
  const declared = entry?.manifest.channels;
  const channels: Channel[] = declared && declared.length > 0 ? [...declared] : [{ name: "default" }];
  // An edge on a channel the manifest does not know (an unknown component) still gets a handle.
  for (const edge of doc.spec.edges) {
    if (edge.sourceId === node.id && !channels.some((c) => c.name === edgeChannel(edge))) channels.push({ name: edgeChannel(edge) });
  }
  return channels;
}

function sameChannels(a: Channel[], b: Channel[]): boolean {
  return a.length === b.length && a.every((channel, index) => channel.name === b[index].name);
}

export function buildNodes(
  doc: CanvasDoc,
  byName: Map<string, PaletteEntry>,
  issueCounts: Map<string, number>,
  autoPositions: Record<string, { x: number; y: number }>,
  previous: Node<CardData>[],
  overlay: RunOverlay | null,
  selected: string | null,
): Node<CardData>[] {
  const before = new Map(previous.map((node) => [node.id, node]));
  const next = doc.spec.nodes.map((node) => {
    const entry = byName.get(node.component);
    const position = node.position ?? autoPositions[node.id] ?? { x: 0, y: 0 };
    const issues = issueCounts.get(node.id) ?? 0;
    const channels = channelsOf(node, entry, doc);
    const state = overlay ? (overlay.states.get(node.id) ?? "") : undefined;
    const execution = overlay?.executions.get(node.id);
    const output = overlay?.outputs.get(node.id);
    const old = before.get(node.id);
    const isSelected = selected === node.id;
    if (
      old &&
      old.data.node === node &&
      old.data.entry === entry &&
      old.data.issues === issues &&
      old.data.state === state &&
      old.data.execution === execution &&
      old.data.output === output &&
      sameChannels(old.data.channels, channels) &&
      !!old.selected === isSelected
    ) {
      if (old.position.x === position.x && old.position.y === position.y) return old;
      return { ...old, position };
    }
    const data: CardData = { node, entry, channels, issues, state, execution, output };
    return {
      ...(old ?? {}),
      id: node.id,
      type: node.type === "TYPE_WIDGET" ? "note" : "card",
      position: old && old.dragging ? old.position : position,
      data,
      selected: isSelected,
    };
  });
  return sameItems(next, previous) ? previous : next;
}

/** The previous array when nothing in it changed, so React Flow has nothing to reconcile. */
function sameItems<T>(next: T[], previous: T[]): boolean {
  return next.length === previous.length && next.every((item, index) => item === previous[index]);
}

export function buildEdges(doc: CanvasDoc, taken: Set<string> | null, previous: Edge[]): Edge[] {
  const before = new Map(previous.map((edge) => [edge.id, edge]));
  const next = doc.spec.edges.map((edge): Edge => {
    const id = edgeKey(edge);
    const channel = edgeChannel(edge);
    const isTaken = !!taken?.has(id);
    const old = before.get(id);
    if (old && (old.data as { taken: boolean }).taken === isTaken && old.sourceHandle === channel) return old;
    return {
      id,
      source: edge.sourceId,
      target: edge.targetId,
      sourceHandle: channel,
      label: channel === "default" ? undefined : channel,
      className: `${isTaken ? "taken" : ""} channel-${channel}`,
      animated: false,
      data: { taken: isTaken },
      domAttributes: { "data-testid": `edge-${id}`, "data-taken": isTaken ? "true" : "false" } as Record<string, string>,
    };
  });
  return sameItems(next, previous) ? previous : next;
}
