// The left palette: every trigger, component and widget from /api/palette.
import type { CSSProperties } from "react";
import { memo, useState } from "react";
import { DRAG_TYPE } from "../graph/Graph";
import { Icon } from "../graph/icons";
import { accentColour } from "../graph/nodes";
import { palette, type PaletteEntry } from "../palette";
import { useStore } from "../store";
import { addComponent } from "./actions";

const GROUPS: { kind: PaletteEntry["kind"]; title: string }[] = [
  { kind: "trigger", title: "Triggers" },
  { kind: "component", title: "Components" },
  { kind: "widget", title: "Widgets" },
];

const Item = memo(function Item({ entry }: { entry: PaletteEntry }) {
  const { manifest } = entry;
  return (
    <div
      className="palette-item"
      data-testid={`palette-item-${manifest.name}`}
      draggable
      title={`${manifest.description ?? ""}\n(drag onto the canvas or double-click)`}
      style={{ "--accent": accentColour(manifest.color) } as CSSProperties}
      onDragStart={(event) => {
        event.dataTransfer.setData(DRAG_TYPE, manifest.name);
        event.dataTransfer.effectAllowed = "copy";
      }}
      onDoubleClick={() => addComponent(manifest.name)}
    >
      <span className="palette-icon">
        <Icon name={manifest.icon} />
      </span>
      <span className="palette-text">
        <span className="palette-label">{manifest.label || manifest.name}</span>
        <span className="palette-desc">{manifest.description}</span>
      </span>
    </div>
  );
});

export function Palette() {
  const entries = useStore(palette, (s) => s.entries);
  const error = useStore(palette, (s) => s.error);
  const [filter, setFilter] = useState("");
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? entries.filter((e) => `${e.manifest.label} ${e.manifest.name} ${e.manifest.description}`.toLowerCase().includes(needle))
    : entries;
  return (
    <aside className="palette" data-testid="palette">
      <input className="input palette-filter" placeholder="Search components" value={filter} onChange={(e) => setFilter(e.target.value)} />
      {error && <div className="field-error">{error}</div>}
      {GROUPS.map(({ kind, title }) => {
        const items = shown.filter((entry) => entry.kind === kind);
        if (items.length === 0) return null;
        return (
          <section key={kind}>
            <h3 className="palette-group">{title}</h3>
            {items.map((entry) => (
              <Item key={entry.manifest.name} entry={entry} />
            ))}
          </section>
        );
      })}
    </aside>
  );
}
