// A small layered left-to-right layout: rank = longest path from a source, order within a rank by
// the barycentre of the predecessors (a few sweeps), then evenly spaced columns and rows.
import type { CanvasEdge, CanvasNode } from "../types";

const COLUMN = 300;
const ROW = 140;

export function layeredLayout(nodes: CanvasNode[], edges: CanvasEdge[]): Map<string, { x: number; y: number }> {
  const ids = nodes.filter((node) => node.type !== "TYPE_WIDGET").map((node) => node.id);
  const known = new Set(ids);
  const incoming = new Map<string, string[]>(ids.map((id) => [id, []]));
  const outgoing = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const edge of edges) {
    if (!known.has(edge.sourceId) || !known.has(edge.targetId) || edge.sourceId === edge.targetId) continue;
    incoming.get(edge.targetId)!.push(edge.sourceId);
    outgoing.get(edge.sourceId)!.push(edge.targetId);
  }

  // Longest-path ranks by a topological walk (Kahn); nodes on a cycle keep the rank reached so far.
  const rank = new Map<string, number>(ids.map((id) => [id, 0]));
  const remaining = new Map(ids.map((id) => [id, incoming.get(id)!.length]));
  const queue = ids.filter((id) => remaining.get(id) === 0);
  const visited = new Set<string>();
  while (queue.length > 0 || visited.size < ids.length) {
    if (queue.length === 0) {
      // A cycle: release the unvisited node with the fewest remaining inputs.
      const next = ids.filter((id) => !visited.has(id)).sort((a, b) => remaining.get(a)! - remaining.get(b)!)[0];
      queue.push(next);
      remaining.set(next, 0);
    }
    const id = queue.shift()!;
    if (visited.has(id)) continue;
    visited.add(id);
    for (const target of outgoing.get(id)!) {
      if (visited.has(target)) continue;
      rank.set(target, Math.max(rank.get(target)!, rank.get(id)! + 1));
      const left = remaining.get(target)! - 1;
      remaining.set(target, left);
      if (left === 0) queue.push(target);
    }
  }

  const layers: string[][] = [];
  for (const id of ids) (layers[rank.get(id)!] ??= []).push(id);
  const order = new Map<string, number>();
  layers.forEach((layer) => layer.forEach((id, index) => order.set(id, index)));
  for (let sweep = 0; sweep < 4; sweep++) {
    for (const layer of layers.slice(1)) {
      const centre = (id: string) => {
        const preds = incoming.get(id)!;
        return preds.length === 0 ? order.get(id)! : preds.reduce((sum, p) => sum + order.get(p)!, 0) / preds.length;
      };
      const centres = new Map(layer.map((id) => [id, centre(id)]));
      layer.sort((a, b) => centres.get(a)! - centres.get(b)!);
      layer.forEach((id, index) => order.set(id, index));
    }
  }

  const positions = new Map<string, { x: number; y: number }>();
  const tallest = Math.max(1, ...layers.map((layer) => layer.length));
  layers.forEach((layer, column) => {
    const offset = ((tallest - layer.length) * ROW) / 2;
    layer.forEach((id, row) => positions.set(id, { x: column * COLUMN, y: offset + row * ROW }));
  });
  // Widgets (notes) go in a row under the graph.
  nodes
    .filter((node) => node.type === "TYPE_WIDGET")
    .forEach((node, index) => positions.set(node.id, { x: index * COLUMN, y: tallest * ROW + 40 }));
  return positions;
}

export function missingPositions(nodes: CanvasNode[], edges: CanvasEdge[]): Record<string, { x: number; y: number }> {
  if (nodes.every((node) => node.position && typeof node.position.x === "number")) return {};
  const layout = layeredLayout(nodes, edges);
  const result: Record<string, { x: number; y: number }> = {};
  for (const node of nodes) if (!node.position) result[node.id] = layout.get(node.id)!;
  return result;
}
