// A small JSON Schema → Field adapter for components that describe their configuration as a
// schema (the builtin http) instead of manifest `fields`; the generic form renders both.
import type { Field, JsonObject, JsonValue } from "../types";

type Schema = JsonObject;

function asSchema(value: JsonValue | undefined): Schema {
  return value && typeof value === "object" && !Array.isArray(value) ? value : {};
}

function titleOf(name: string, schema: Schema): string {
  if (typeof schema.title === "string") return schema.title;
  const spaced = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2");
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

function numberOr(value: JsonValue | undefined): number | null {
  return typeof value === "number" ? value : null;
}

export function schemaToField(name: string, raw: JsonValue | undefined, required: boolean): Field {
  const schema = asSchema(raw);
  const base: Field = {
    name,
    label: titleOf(name, schema),
    type: "string",
    description: typeof schema.description === "string" ? schema.description : "",
    required,
    // Every string of a canvas configuration may hold an expression; the server decides.
    supportsExpressions: true,
  };
  if (schema.default !== undefined) base.default = schema.default;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (Array.isArray(schema.enum)) {
    return {
      ...base,
      type: "select",
      supportsExpressions: false,
      options: schema.enum.map((value) => ({ value: String(value), label: String(value) })),
    };
  }
  if (type === "integer" || type === "number") {
    return {
      ...base,
      type: "number",
      integer: type === "integer",
      min: numberOr(schema.minimum) ?? numberOr(schema.exclusiveMinimum),
      max: numberOr(schema.maximum) ?? numberOr(schema.exclusiveMaximum),
    };
  }
  if (type === "boolean") return { ...base, type: "boolean", supportsExpressions: false };
  if (type === "object") return { ...base, type: "object", fields: schemaToFields(schema) };
  if (type === "array") {
    return { ...base, type: "list", itemField: schemaToField("item", schema.items, false) };
  }
  if (name === "body" || schema.format === "textarea") return { ...base, type: "text" };
  return base;
}

export function schemaToFields(raw: JsonValue | undefined): Field[] {
  const schema = asSchema(raw);
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
  return Object.entries(asSchema(schema.properties)).map(([name, sub]) =>
    schemaToField(name, sub, required.has(name)),
  );
}
