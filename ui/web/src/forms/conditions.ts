// visibleWhen / requiredWhen name a sibling field; a sibling's effective value is its value or default.
import type { Field, FieldCondition, JsonObject, JsonValue } from "../types";

export function effectiveValue(field: Field, value: JsonValue | undefined): JsonValue | undefined {
  return value === undefined ? field.default : value;
}

function siblingValue(siblings: Field[], values: JsonObject, name: string): JsonValue | undefined {
  const field = siblings.find((candidate) => candidate.name === name);
  return field ? effectiveValue(field, values[name]) : values[name];
}

function holds(conditions: FieldCondition[], siblings: Field[], values: JsonObject): boolean {
  return conditions.every((condition) => {
    const value = siblingValue(siblings, values, condition.field);
    return condition.values.some((allowed) => allowed === value || String(allowed) === String(value));
  });
}

export function isVisible(field: Field, siblings: Field[], values: JsonObject): boolean {
  return !field.visibleWhen || field.visibleWhen.length === 0 || holds(field.visibleWhen, siblings, values);
}

export function isRequired(field: Field, siblings: Field[], values: JsonObject): boolean {
  if (field.required) return true;
  return !!field.requiredWhen && field.requiredWhen.length > 0 && holds(field.requiredWhen, siblings, values);
}

function asObject(value: JsonValue | undefined): JsonObject {
  return value && typeof value === "object" && !Array.isArray(value) ? value : {};
}

/** Dotted paths of every field the form currently shows (so other issues go to the node list). */
export function visiblePaths(fields: Field[], values: JsonObject, prefix = "", into = new Set<string>()): Set<string> {
  for (const field of fields) {
    if (!isVisible(field, fields, values)) continue;
    const path = prefix + field.name;
    into.add(path);
    const value = values[field.name];
    if (field.type === "object" && field.fields) {
      visiblePaths(field.fields, asObject(value), `${path}.`, into);
    } else if (field.type === "list" && Array.isArray(value)) {
      value.forEach((item, index) => {
        const itemPath = `${path}.${index}`;
        into.add(itemPath);
        const itemField = field.itemField;
        if (itemField?.type === "object" && itemField.fields) visiblePaths(itemField.fields, asObject(item), `${itemPath}.`, into);
      });
    }
  }
  return into;
}
