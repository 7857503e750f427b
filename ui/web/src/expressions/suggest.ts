// What to offer at the caret of an expression: upstream node names after `$["`, payload keys after
// `$["Name"].`, `root().` and `previous().`, function names inside `{{ }}` / `<< >>`.
import type { FunctionInfo, JsonValue } from "../types";

export interface Suggestion {
  label: string;
  insert: string;
  detail: string;
  /** How many characters before the caret the insertion replaces. */
  replace: number;
}

export interface UpstreamSource {
  name: string;
  component: string;
  example: JsonValue | undefined;
}

export interface SuggestContext {
  upstream: UpstreamSource[];
  rootPayload: JsonValue | undefined;
  previous: JsonValue | undefined;
  functions: FunctionInfo[];
}

const LIMIT = 30;

function matches(candidate: string, partial: string): boolean {
  return candidate.toLowerCase().includes(partial.toLowerCase());
}

function describe(value: JsonValue | undefined): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "object";
  if (typeof value === "string") return JSON.stringify(value.length > 30 ? `${value.slice(0, 30)}…` : value);
  return value === undefined ? "" : String(value);
}

function keysAt(root: JsonValue | undefined, chain: string[], partial: string): Suggestion[] {
  let current: JsonValue | undefined = root;
  for (const key of chain) {
    if (current === null || current === undefined || typeof current !== "object") return [];
    current = Array.isArray(current) ? current[Number(key)] : current[key];
  }
  if (current === null || current === undefined || typeof current !== "object" || Array.isArray(current)) return [];
  return Object.entries(current)
    .filter(([key]) => matches(key, partial))
    .map(([key, value]) => ({ label: key, insert: key, detail: describe(value), replace: partial.length }));
}

function chainOf(text: string): string[] {
  return text.split(".").filter((part) => part !== "");
}

function insideExpression(before: string): boolean {
  const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("<<"));
  const close = Math.max(before.lastIndexOf("}}"), before.lastIndexOf(">>"));
  return open >= 0 && open > close;
}

export function suggest(before: string, context: SuggestContext): Suggestion[] {
  const name = /\$\[\s*"([^"\]]*)$/.exec(before);
  if (name) {
    const partial = name[1];
    const seen = new Set<string>();
    const out: Suggestion[] = [];
    for (const source of context.upstream) {
      for (const [label, detail] of [
        [source.name, source.component],
        [source.component, "component"],
      ]) {
        if (seen.has(label) || !matches(label, partial)) continue;
        seen.add(label);
        out.push({ label, insert: `${label}"]`, detail, replace: partial.length });
      }
    }
    return out.slice(0, LIMIT);
  }
  const field = /\$\[\s*"([^"]+)"\s*\]((?:\.\w+)*)\.(\w*)$/.exec(before);
  if (field) {
    const source = context.upstream.find((s) => s.name === field[1]) ?? context.upstream.find((s) => s.component === field[1]);
    return keysAt({ data: source?.example ?? {} }, chainOf(field[2]), field[3]).slice(0, LIMIT);
  }
  const root = /root\(\)((?:\.\w+)*)\.(\w*)$/.exec(before);
  if (root) return keysAt({ data: context.rootPayload ?? {} }, chainOf(root[1]), root[2]).slice(0, LIMIT);
  const previous = /previous\(\)((?:\.\w+)*)\.(\w*)$/.exec(before);
  if (previous) return keysAt({ data: context.previous ?? {} }, chainOf(previous[1]), previous[2]).slice(0, LIMIT);
  if (!insideExpression(before)) return [];
  const word = /(?:^|[^\w.$"\])])([A-Za-z_]\w*)$/.exec(before);
  const partial = word ? word[1] : /(?:\{\{|<<)\s*$/.test(before) ? "" : null;
  if (partial === null) return [];
  const out: Suggestion[] = context.functions
    .filter((fn) => fn.name.toLowerCase().startsWith(partial.toLowerCase()) && fn.name !== partial)
    .map((fn) => ({
      label: fn.signature || `${fn.name}()`,
      insert: /\(\s*\)$/.test(fn.signature) ? `${fn.name}()` : `${fn.name}(`,
      detail: fn.description ?? "",
      replace: partial.length,
    }));
  if (partial === "") out.unshift({ label: '$["…"]', insert: '$["', detail: "an upstream node's event", replace: 0 });
  return out.slice(0, LIMIT);
}
