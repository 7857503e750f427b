// The palette (manifests of every component, trigger and widget), loaded once per page.
import { api } from "./api";
import { Store } from "./store";
import type { Field, FunctionInfo, Manifest, Palette } from "./types";
import { schemaToFields } from "./forms/jsonSchema";

export type PaletteKind = "component" | "trigger" | "widget";

export interface PaletteEntry {
  manifest: Manifest;
  kind: PaletteKind;
  fields: Field[];
}

export interface PaletteState {
  loaded: boolean;
  error: string;
  entries: PaletteEntry[];
  byName: Map<string, PaletteEntry>;
  functions: FunctionInfo[];
}

export const palette = new Store<PaletteState>({
  loaded: false,
  error: "",
  entries: [],
  byName: new Map(),
  functions: [],
});

function entriesOf(data: Palette): PaletteEntry[] {
  const make = (manifest: Manifest, kind: PaletteKind): PaletteEntry => ({
    manifest,
    kind,
    // Components without `fields` (the builtin http) describe their form as a JSON Schema.
    fields: manifest.fields ?? (manifest.configuration ? schemaToFields(manifest.configuration) : []),
  });
  return [
    ...data.triggers.map((m) => make(m, "trigger")),
    ...data.components.map((m) => make(m, "component")),
    ...data.widgets.map((m) => make(m, "widget")),
  ];
}

let loading: Promise<void> | null = null;

export function loadPalette(): Promise<void> {
  loading ??= api.palette().then(
    (data) => {
      const entries = entriesOf(data);
      palette.set({
        loaded: true,
        entries,
        byName: new Map(entries.map((entry) => [entry.manifest.name, entry])),
        functions: data.functions ?? [],
      });
    },
    (error: unknown) => {
      loading = null;
      palette.set({ error: error instanceof Error ? error.message : String(error) });
    },
  );
  return loading;
}
