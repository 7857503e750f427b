// Pure edits of a canvas document. Every edit returns a new document and keeps every key it does
// not know about, so that open → save of an unchanged canvas writes nothing.
import type { CanvasDoc, CanvasEdge, CanvasNode, JsonObject, JsonValue, Manifest } from "./types";

export const START_COMPONENT = "start";

export function emptyCanvas(name = "untitled"): CanvasDoc {
  return {
    apiVersion: "v1",
    kind: "Canvas",
    metadata: { name },
    spec: {
      nodes: [{ id: "start", name: "Manual Run", type: "TYPE_TRIGGER", component: START_COMPONENT, position: { x: 0, y: 0 } }],
      edges: [],
    },
  };
}

export function slug(text: string): string {
  return (
    text
      .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "node"
  );
}

function shortSuffix(): string {
  return Math.random().toString(36).slice(2, 6);
}

export function uniqueNodeId(doc: CanvasDoc, component: string): string {
  const taken = new Set(doc.spec.nodes.map((node) => node.id));
  const base = slug(component.replace(/^daytona\./, ""));
  for (;;) {
    const id = `${base}-${shortSuffix()}`;
    if (!taken.has(id)) return id;
  }
}

export function uniqueNodeName(doc: CanvasDoc, label: string, exceptId?: string): string {
  const taken = new Set(doc.spec.nodes.filter((node) => node.id !== exceptId).map((node) => node.name));
  if (!taken.has(label)) return label;
  for (let n = 2; ; n++) {
    const candidate = `${label} ${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

export function nodeTypeFor(kind: "component" | "trigger" | "widget"): string {
  return kind === "trigger" ? "TYPE_TRIGGER" : kind === "widget" ? "TYPE_WIDGET" : "TYPE_ACTION";
}

export function addNode(
  doc: CanvasDoc,
  manifest: Manifest,
  kind: "component" | "trigger" | "widget",
  position: { x: number; y: number },
): { doc: CanvasDoc; id: string } {
  const id = uniqueNodeId(doc, manifest.name);
  const node: CanvasNode = {
    id,
    name: uniqueNodeName(doc, manifest.label || manifest.name),
    type: nodeTypeFor(kind),
    component: manifest.name,
    position: { x: Math.round(position.x), y: Math.round(position.y) },
  };
  if (kind === "widget") node.configuration = { text: manifest.label || "Note" };
  return { doc: withNodes(doc, [...doc.spec.nodes, node]), id };
}

export function withNodes(doc: CanvasDoc, nodes: CanvasNode[]): CanvasDoc {
  return { ...doc, spec: { ...doc.spec, nodes } };
}

export function withEdges(doc: CanvasDoc, edges: CanvasEdge[]): CanvasDoc {
  return { ...doc, spec: { ...doc.spec, edges } };
}

export function updateNode(doc: CanvasDoc, id: string, update: (node: CanvasNode) => CanvasNode): CanvasDoc {
  return withNodes(
    doc,
    doc.spec.nodes.map((node) => (node.id === id ? update(node) : node)),
  );
}

export function moveNodes(doc: CanvasDoc, positions: Map<string, { x: number; y: number }>): CanvasDoc {
  let changed = false;
  const nodes = doc.spec.nodes.map((node) => {
    const next = positions.get(node.id);
    if (!next) return node;
    const position = { x: Math.round(next.x), y: Math.round(next.y) };
    if (node.position && node.position.x === position.x && node.position.y === position.y) return node;
    changed = true;
    return { ...node, position };
  });
  return changed ? withNodes(doc, nodes) : doc;
}

export function removeElements(doc: CanvasDoc, nodeIds: Set<string>, edgeKeys: Set<string>): CanvasDoc {
  if (nodeIds.size === 0 && edgeKeys.size === 0) return doc;
  return {
    ...doc,
    spec: {
      ...doc.spec,
      nodes: doc.spec.nodes.filter((node) => !nodeIds.has(node.id)),
      edges: doc.spec.edges.filter(
        (edge) => !nodeIds.has(edge.sourceId) && !nodeIds.has(edge.targetId) && !edgeKeys.has(edgeKey(edge)),
      ),
    },
  };
}

export function edgeChannel(edge: CanvasEdge): string {
  return edge.channel || "default";
}

export function edgeKey(edge: CanvasEdge): string {
  return `${edge.sourceId}-${edgeChannel(edge)}-${edge.targetId}`;
}

export function connect(doc: CanvasDoc, sourceId: string, channel: string, targetId: string): CanvasDoc {
  if (sourceId === targetId) return doc;
  const edge: CanvasEdge = { sourceId, targetId, channel };
  if (doc.spec.edges.some((existing) => edgeKey(existing) === edgeKey(edge))) return doc;
  return withEdges(doc, [...doc.spec.edges, edge]);
}

// ---- configuration values at dotted paths ("env.0.name") ----

export function splitPath(path: string): string[] {
  return path === "" ? [] : path.split(".");
}

export function getAt(root: JsonValue | undefined, path: string[]): JsonValue | undefined {
  let current: JsonValue | undefined = root;
  for (const key of path) {
    if (current === null || current === undefined || typeof current !== "object") return undefined;
    current = Array.isArray(current) ? current[Number(key)] : current[key];
  }
  return current;
}

/** Sets (or, with `undefined`, removes) the value at `path`, copying only the containers on the way. */
export function setAt(root: JsonValue | undefined, path: string[], value: JsonValue | undefined): JsonValue | undefined {
  if (path.length === 0) return value;
  const [key, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = root.slice();
    const index = Number(key);
    const next = setAt(copy[index], rest, value);
    if (next === undefined && rest.length === 0) copy.splice(index, 1);
    else copy[index] = next === undefined ? null : next;
    return copy;
  }
  const base: JsonObject = root && typeof root === "object" ? { ...(root as JsonObject) } : {};
  const next = setAt(base[key], rest, value);
  if (next === undefined) delete base[key];
  else base[key] = next;
  return base;
}

export function setConfiguration(node: CanvasNode, path: string, value: JsonValue | undefined): CanvasNode {
  const next = setAt(node.configuration ?? {}, splitPath(path), value) as JsonObject | undefined;
  const copy: CanvasNode = { ...node };
  // Emptied configurations go away, as the optional values inside them do.
  if (next === undefined || Object.keys(next).length === 0) {
    delete copy.configuration;
  } else {
    copy.configuration = next;
  }
  return copy;
}

/** Structural equality of JSON values (documents are JSON, so this is enough). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, index) => sameJson(item, other[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => Object.prototype.hasOwnProperty.call(right, key) && sameJson(left[key], right[key]));
}

/** The part of a document validation depends on: everything but node positions. */
export function validationKey(doc: CanvasDoc): string {
  return JSON.stringify({
    ...doc,
    spec: { ...doc.spec, nodes: doc.spec.nodes.map(({ position: _position, ...rest }) => rest) },
  });
}

/** Upstream nodes of `nodeId`, nearest first, by walking the edges backwards. */
export function upstreamNodes(doc: CanvasDoc, nodeId: string): CanvasNode[] {
  const byId = new Map(doc.spec.nodes.map((node) => [node.id, node]));
  const seen = new Set<string>([nodeId]);
  const order: CanvasNode[] = [];
  let frontier = [nodeId];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const edge of doc.spec.edges) {
        if (edge.targetId !== id || seen.has(edge.sourceId)) continue;
        seen.add(edge.sourceId);
        const node = byId.get(edge.sourceId);
        if (node) order.push(node);
        next.push(edge.sourceId);
      }
    }
    frontier = next;
  }
  return order;
}
