// Builds the autocomplete context for a node from the open document and the palette.
import { upstreamNodes } from "../doc";
import { palette } from "../palette";
import type { CanvasDoc, JsonObject, JsonValue } from "../types";
import type { SuggestContext } from "./suggest";

function templatesPayload(doc: CanvasDoc): JsonObject {
  const merged: JsonObject = {};
  for (const node of doc.spec.nodes) {
    if (node.component !== "start") continue;
    const templates = node.configuration?.templates;
    if (!Array.isArray(templates)) continue;
    for (const template of templates) {
      const payload = template && typeof template === "object" && !Array.isArray(template) ? template.payload : null;
      if (payload && typeof payload === "object" && !Array.isArray(payload)) Object.assign(merged, payload);
    }
  }
  return merged;
}

function exampleData(component: string): JsonValue | undefined {
  return palette.get().byName.get(component)?.manifest.exampleOutput?.data;
}

export function suggestContextFor(doc: CanvasDoc, nodeId: string): SuggestContext {
  const upstream = upstreamNodes(doc, nodeId).map((node) => ({
    name: node.name,
    component: node.component,
    example: exampleData(node.component),
  }));
  // previous() is the event that triggered this node: the nearest upstream node's.
  return {
    upstream,
    rootPayload: templatesPayload(doc),
    previous: upstream[0]?.example,
    functions: palette.get().functions,
  };
}
