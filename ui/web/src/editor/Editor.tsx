// The editor page: palette, graph and inspector around the open document.
import { useEffect, useMemo } from "react";
import { Graph } from "../graph/Graph";
import { palette } from "../palette";
import { useStore } from "../store";
import { addComponent, link, move, remove } from "./actions";
import { Inspector } from "./Inspector";
import { Palette } from "./Palette";
import { editor, redo, select, undo } from "./state";

function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  return !!element && (element.tagName === "INPUT" || element.tagName === "TEXTAREA" || element.tagName === "SELECT" || element.isContentEditable);
}

export function Editor() {
  const doc = useStore(editor, (s) => s.doc);
  const selected = useStore(editor, (s) => s.selected);
  const issues = useStore(editor, (s) => s.issues);
  const autoPositions = useStore(editor, (s) => s.autoPositions);
  const generation = useStore(editor, (s) => s.generation);
  const byName = useStore(palette, (s) => s.byName);

  const issueCounts = useMemo(() => {
    const counts = new Map<string, number>();
    for (const issue of issues) if (issue.node) counts.set(issue.node, (counts.get(issue.node) ?? 0) + 1);
    return counts;
  }, [issues]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (isTyping(event.target)) return;
      const mod = event.ctrlKey || event.metaKey;
      if (mod && event.key.toLowerCase() === "z") {
        event.preventDefault();
        if (event.shiftKey) redo();
        else undo();
      } else if (mod && event.key.toLowerCase() === "y") {
        event.preventDefault();
        redo();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  return (
    <div className="editor">
      <Palette />
      <Graph
        doc={doc}
        byName={byName}
        issueCounts={issueCounts}
        autoPositions={autoPositions}
        selected={selected}
        generation={generation}
        overlay={null}
        readOnly={false}
        onSelect={select}
        onMove={move}
        onConnect={link}
        onDelete={remove}
        onDrop={addComponent}
      />
      <Inspector />
    </div>
  );
}
