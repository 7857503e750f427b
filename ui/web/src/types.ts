// Shapes of the server's JSON (see /api routes in the UI contract).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface FieldCondition {
  field: string;
  values: JsonValue[];
}

export interface FieldOption {
  value: string;
  label: string;
}

export interface Field {
  name: string;
  label: string;
  type: string;
  description?: string;
  required?: boolean;
  sensitive?: boolean;
  togglable?: boolean;
  supportsExpressions?: boolean;
  placeholder?: string;
  default?: JsonValue;
  options?: FieldOption[];
  min?: number | null;
  max?: number | null;
  integer?: boolean;
  pattern?: string;
  language?: string;
  fields?: Field[];
  itemField?: Field;
  visibleWhen?: FieldCondition[];
  requiredWhen?: FieldCondition[];
}

export interface Channel {
  name: string;
  label?: string;
  description?: string;
}

export interface Manifest {
  name: string;
  label: string;
  description?: string;
  icon?: string;
  color?: string;
  documentation?: string;
  channels?: Channel[];
  payloadType?: string;
  exampleOutput?: { type?: string; data?: JsonValue; timestamp?: string };
  fields?: Field[];
  configuration?: JsonObject;
  payloadSchema?: JsonObject;
}

export interface FunctionInfo {
  name: string;
  signature: string;
  description?: string;
}

export interface Palette {
  components: Manifest[];
  triggers: Manifest[];
  widgets: Manifest[];
  functions: FunctionInfo[];
}

export type NodeType = "TYPE_TRIGGER" | "TYPE_ACTION" | "TYPE_WIDGET" | string;

/** A canvas node as stored in the document; unknown keys are kept untouched on save. */
export interface CanvasNode {
  id: string;
  name: string;
  type: NodeType;
  component: string;
  configuration?: JsonObject;
  position?: { x: number; y: number };
  [key: string]: unknown;
}

export interface CanvasEdge {
  sourceId: string;
  targetId: string;
  channel?: string;
  [key: string]: unknown;
}

export interface CanvasDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; description?: string; [key: string]: unknown };
  spec: { nodes: CanvasNode[]; edges: CanvasEdge[]; [key: string]: unknown };
  [key: string]: unknown;
}

export interface Issue {
  node: string;
  nodeName: string;
  field: string;
  message: string;
  text: string;
}

export interface CanvasFile {
  path: string;
  name: string;
  example: boolean;
}

export type RunStatus = "running" | "cancelling" | "succeeded" | "failed" | "cancelled";

export interface RunHeader {
  id: string;
  canvas: string;
  status: RunStatus;
  error: string | null;
  input: JsonValue;
  keepResources: boolean;
  createdAt: number;
  finishedAt: number | null;
}

export type ExecutionStatus =
  | "pending"
  | "running"
  | "waiting"
  | "checking"
  | "gathering"
  | "emitted"
  | "completed"
  | "failed"
  | "cancelled";

export interface Execution {
  id: string;
  node: string;
  nodeName: string;
  component: string;
  status: ExecutionStatus;
  channel: string | null;
  error: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  outputEventId: string | null;
}

export interface Resource {
  kind: string;
  id: string;
  node: string;
  state: string;
  error: string | null;
}

export interface RunSnapshot {
  run: RunHeader;
  executions: Execution[];
  resources: Resource[];
}

export interface RunDetail extends RunSnapshot {
  canvas: CanvasDoc;
}

export interface StoredEvent {
  id: string;
  node: string;
  channel: string;
  parent: string | null;
  event: { type?: string; data?: JsonValue; timestamp?: string };
}

export interface Sandbox {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
  createdAt?: number | string;
}

export type ExpressionResult =
  | { ok: true; value: JsonValue }
  | { ok: false; error: string; offset?: number; noRun?: boolean };
