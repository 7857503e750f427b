// The one place that talks to the server: every request carries the CSRF header and the cookie.
import type {
  CanvasDoc,
  CanvasFile,
  ExpressionResult,
  Issue,
  JsonValue,
  Palette,
  RunDetail,
  RunHeader,
  Sandbox,
  StoredEvent,
} from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly issues: Issue[];
  constructor(message: string, status: number, issues: Issue[]) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.issues = issues;
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { "X-Daytonaflow-UI": "1", Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const payload = (parsed ?? {}) as { error?: string; issues?: Issue[] };
    throw new ApiError(payload.error ?? `${method} ${path}: HTTP ${response.status}`, response.status, payload.issues ?? []);
  }
  return parsed as T;
}

const q = encodeURIComponent;

/** A trigger a running `daytonaflow up` keeps armed: a webhook's URL or a schedule's next fire time. */
export interface ArmedTrigger {
  nodeId: string;
  component: string;
  url?: string;
  nextFire?: string;
}

export const api = {
  session: () => request<{ version: string; backend: string; db: string }>("GET", "api/session"),
  palette: () => request<Palette>("GET", "api/palette"),
  canvases: () => request<{ files: CanvasFile[] }>("GET", "api/canvases"),
  openCanvas: (path: string) =>
    request<{ path: string; format: string; canvas: CanvasDoc }>("GET", `api/canvas?path=${q(path)}`),
  saveCanvas: (path: string, canvas: CanvasDoc) =>
    request<{ path: string; written: boolean; issues: Issue[] }>("PUT", "api/canvas", { path, canvas }),
  validate: (canvas: CanvasDoc) => request<{ issues: Issue[] }>("POST", "api/validate", { canvas }),
  exportCanvas: (canvas: CanvasDoc, format: "yaml" | "json") =>
    request<{ text: string }>("POST", "api/canvas/export", { canvas, format }),
  importCanvas: (text: string, format?: string) =>
    request<{ canvas: CanvasDoc }>("POST", "api/canvas/import", format ? { text, format } : { text }),
  expression: (canvas: CanvasDoc, node: string, field: string, text: string) =>
    request<ExpressionResult>("POST", "api/expression", { canvas, node, field, text }),
  runs: (limit = 50) => request<{ runs: RunHeader[] }>("GET", `api/runs?limit=${limit}`),
  startRun: (canvas: CanvasDoc, input: JsonValue, keepSandboxes = false) =>
    request<{ run: RunHeader }>("POST", "api/runs", { canvas, input, keepSandboxes }),
  run: (id: string) => request<RunDetail>("GET", `api/runs/${q(id)}`),
  event: (runId: string, eventId: string) =>
    request<StoredEvent>("GET", `api/runs/${q(runId)}/events/${q(eventId)}`),
  cancelRun: (id: string) => request<{ run: RunHeader }>("POST", `api/runs/${q(id)}/cancel`),
  triggers: (canvas: string) => request<{ triggers: ArmedTrigger[] }>("GET", `api/triggers?canvas=${q(canvas)}`),
  sandboxes: () => request<{ backend: string; sandboxes: Sandbox[] }>("GET", "api/sandboxes"),
  deleteSandbox: (id: string) => request<{ deleted: string }>("DELETE", `api/sandboxes/${q(id)}`),
};

/** EventSource sends the cookie on same-origin URLs; the stream needs no CSRF header (it is a GET). */
export function runStream(id: string): EventSource {
  return new EventSource(`api/runs/${q(id)}/stream`, { withCredentials: true });
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError && error.issues.length > 0) {
    return [error.message, ...error.issues.map((issue) => issue.text)].join("\n");
  }
  return error instanceof Error ? error.message : String(error);
}
