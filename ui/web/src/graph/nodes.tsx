// The graph's node cards. Memoised: a node re-renders only when its own data object changes.
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { memo, useEffect, useState, type CSSProperties } from "react";
import type { PaletteEntry } from "../palette";
import type { CanvasNode, Channel, Execution } from "../types";
import { Icon } from "./icons";
import { Markdown } from "./markdown";

export interface CardData extends Record<string, unknown> {
  node: CanvasNode;
  entry: PaletteEntry | undefined;
  channels: Channel[];
  issues: number;
  /** Run view only: */
  state?: string;
  execution?: Execution;
  output?: string;
}

export type CardNode = Node<CardData, "card">;
export type NoteNode = Node<CardData, "note">;

const NOTE_COLOURS: Record<string, string> = {
  yellow: "#fef3c7",
  blue: "#dbeafe",
  green: "#dcfce7",
  red: "#fee2e2",
  purple: "#ede9fe",
  gray: "#f3f4f6",
};

// Manifests may name a colour ("blue"); these are the theme's softer shades of those names.
const NAMED_ACCENTS: Record<string, string> = {
  blue: "#3b82f6",
  green: "#22c55e",
  red: "#ef4444",
  yellow: "#eab308",
  orange: "#f97316",
  purple: "#8b5cf6",
  gray: "#94a3b8",
  grey: "#94a3b8",
};

export function accentColour(colour: string | undefined): string {
  if (!colour) return NAMED_ACCENTS.gray;
  return NAMED_ACCENTS[colour.toLowerCase()] ?? colour;
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.max(0, Math.round(seconds * 1000))} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} m ${Math.round(seconds - minutes * 60)} s`;
}

/** A node's time; ticks on its own while the node runs so the graph does not re-render. */
export function NodeTime({ id, execution }: { id: string; execution: Execution | undefined }) {
  const running = !!execution && execution.startedAt !== null && execution.finishedAt === null;
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setNow(Date.now() / 1000), 200);
    return () => clearInterval(timer);
  }, [running]);
  if (!execution || execution.startedAt === null) return <span className="node-time" data-testid={`node-time-${id}`} />;
  const end = execution.finishedAt ?? Math.max(now, execution.startedAt);
  return (
    <span className="node-time" data-testid={`node-time-${id}`}>
      {formatDuration(end - execution.startedAt)}
    </span>
  );
}

function lastLines(text: string, count: number): string[] {
  return text.replace(/\n$/, "").split("\n").slice(-count);
}

// React Flow re-renders a node when its size or position changes; the card's body depends only on
// its data and selection, so it sits behind a second memo.
export const CardNodeView = memo(function CardNodeView({ data, selected }: NodeProps<CardNode>) {
  return <CardBody data={data} selected={!!selected} />;
});

const CardBody = memo(function CardBody({ data, selected }: { data: CardData; selected: boolean }) {
  const { node, entry, channels, issues, state, execution, output } = data;
  const manifest = entry?.manifest;
  const isTrigger = node.type === "TYPE_TRIGGER";
  const colour = accentColour(manifest?.color);
  return (
    <div
      className={`df-node${selected ? " selected" : ""}${issues > 0 ? " invalid" : ""}`}
      style={{ "--accent": colour } as CSSProperties}
      data-testid={`node-${node.id}`}
      data-state={state ?? ""}
      data-invalid={issues > 0 ? "true" : undefined}
    >
      {!isTrigger && <Handle type="target" position={Position.Left} className="df-target" data-testid={`target-${node.id}`} />}
      <div className="df-node-head">
        <span className="df-node-icon">
          <Icon name={manifest?.icon} />
        </span>
        <div className="df-node-titles">
          <div className="df-node-title" data-testid={`node-title-${node.id}`} title={node.name}>
            {node.name}
          </div>
          <div className="df-node-sub">{manifest?.label ?? node.component}</div>
        </div>
        {issues > 0 && (
          <span className="df-badge" data-testid={`node-badge-${node.id}`} title={`${issues} issue(s)`}>
            {issues}
          </span>
        )}
      </div>
      {state !== undefined && (
        <div className="df-node-run">
          <span className={`pill state-${state || "idle"}`}>{state || "not run"}</span>
          {execution?.channel && execution.channel !== "default" && (
            <span className={`pill channel-taken channel-${execution.channel}`} data-testid={`node-channel-${node.id}`}>
              {execution.channel}
            </span>
          )}
          <NodeTime id={node.id} execution={execution} />
        </div>
      )}
      {output !== undefined && output !== "" && (
        <pre className="df-node-output" data-testid={`node-output-${node.id}`}>
          {lastLines(output, 3).map((outputLine, index) => (
            // One row per line, cut with an ellipsis: a wrapped long line would push the newest out.
            <div className="df-output-line" key={index}>
              {outputLine || " "}
            </div>
          ))}
        </pre>
      )}
      <div className="df-channels">
        {channels.map((channel) => (
          <div className="df-channel" key={channel.name}>
            <span className="df-channel-label">{channel.name}</span>
            <Handle
              type="source"
              position={Position.Right}
              id={channel.name}
              className={`df-source channel-${channel.name}`}
              data-testid={`handle-${node.id}-${channel.name}`}
              title={channel.description || channel.label || channel.name}
            />
          </div>
        ))}
      </div>
    </div>
  );
});

export const NoteNodeView = memo(function NoteNodeView({ data, selected }: NodeProps<NoteNode>) {
  return <NoteBody data={data} selected={!!selected} />;
});

const NoteBody = memo(function NoteBody({ data, selected }: { data: CardData; selected: boolean }) {
  const { node } = data;
  const text = typeof node.configuration?.text === "string" ? node.configuration.text : "";
  const colour = typeof node.configuration?.color === "string" ? node.configuration.color : "yellow";
  return (
    <div
      className={`df-note${selected ? " selected" : ""}${data.issues > 0 ? " invalid" : ""}`}
      style={{ background: NOTE_COLOURS[colour] ?? NOTE_COLOURS.yellow }}
      data-testid={`node-${node.id}`}
      data-state={data.state ?? ""}
      data-invalid={data.issues > 0 ? "true" : undefined}
    >
      <div className="df-note-title" data-testid={`node-title-${node.id}`}>
        {node.name}
        {data.issues > 0 && (
          <span className="df-badge" data-testid={`node-badge-${node.id}`}>
            {data.issues}
          </span>
        )}
      </div>
      <Markdown text={text} />
    </div>
  );
});

export const nodeTypes = { card: CardNodeView, note: NoteNodeView };
