// The run view: the canvas read-only, coloured by each node's execution state, with an inspector.
import { useCallback, useEffect, useMemo, useState } from "react";
import { api, errorText } from "../api";
import { edgeChannel, edgeKey } from "../doc";
import type { RunOverlay } from "../graph/convert";
import { Graph } from "../graph/Graph";
import { missingPositions } from "../graph/layout";
import { formatDuration, NodeTime } from "../graph/nodes";
import { palette } from "../palette";
import { useStore } from "../store";
import type { CanvasDoc, Execution, ExecutionStatus, Resource, RunHeader, StoredEvent } from "../types";
import { isFinished, useRun } from "./useRun";

const STATE_OF: Record<ExecutionStatus, string> = {
  pending: "queued",
  running: "running",
  waiting: "waiting",
  checking: "waiting",
  gathering: "waiting",
  emitted: "emitted",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
};

const EMITTED = new Set<ExecutionStatus>(["emitted", "completed"]);

function overlayOf(canvas: CanvasDoc, executions: Execution[], outputs: Map<string, string>): RunOverlay {
  const latest = new Map<string, Execution>();
  const emittedOn = new Set<string>();
  for (const execution of executions) {
    latest.set(execution.node, execution);
    if (EMITTED.has(execution.status) && execution.channel) emittedOn.add(`${execution.node}\0${execution.channel}`);
  }
  const states = new Map<string, string>();
  for (const [node, execution] of latest) states.set(node, STATE_OF[execution.status] ?? execution.status);
  const taken = new Set<string>();
  for (const edge of canvas.spec.edges) {
    if (emittedOn.has(`${edge.sourceId}\0${edgeChannel(edge)}`)) taken.add(edgeKey(edge));
  }
  return { states, executions: latest, outputs, taken };
}

export function formatTime(epoch: number | null | undefined): string {
  if (!epoch) return "";
  return new Date(epoch * 1000).toLocaleString();
}

export function runDuration(run: RunHeader, now = Date.now() / 1000): string {
  return formatDuration((run.finishedAt ?? now) - run.createdAt);
}

function EventPayload({ runId, execution }: { runId: string; execution: Execution }) {
  const [event, setEvent] = useState<StoredEvent | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setEvent(null);
    setError("");
    if (!execution.outputEventId) return;
    api.event(runId, execution.outputEventId).then(setEvent, (failure: unknown) => setError(errorText(failure)));
  }, [runId, execution.outputEventId]);
  if (!execution.outputEventId) return <p className="muted small">No output event yet.</p>;
  if (error) return <pre className="field-error">{error}</pre>;
  if (!event) return <p className="muted small">Loading the event…</p>;
  return (
    <>
      <div className="muted small">
        channel <strong>{event.channel}</strong> · {event.event.type}
      </div>
      <pre className="json" data-testid="event-payload">
        {JSON.stringify(event.event, null, 2)}
      </pre>
    </>
  );
}

function Resources({ resources }: { resources: Resource[] }) {
  return (
    <div className="run-resources" data-testid="run-resources">
      <h3 className="palette-group">Sandboxes of this run</h3>
      {resources.length === 0 ? (
        <p className="muted small">none</p>
      ) : (
        <ul>
          {resources.map((resource) => (
            <li key={`${resource.kind}:${resource.id}`} data-testid={`run-resource-${resource.id}`}>
              <span className="muted small">{resource.kind}</span> <code>{resource.id}</code>{" "}
              <span className={`pill state-${resource.state}`}>{resource.state}</span>
              <span className="muted small"> {resource.node}</span>
              {resource.error && <div className="field-error">{resource.error}</div>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function RunInspector({
  runId,
  canvas,
  selected,
  overlay,
  run,
  resources,
  executions,
  onPick,
}: {
  executions: Execution[];
  onPick: (node: string) => void;
  runId: string;
  canvas: CanvasDoc;
  selected: string | null;
  overlay: RunOverlay;
  run: RunHeader;
  resources: Resource[];
}) {
  const node = canvas.spec.nodes.find((candidate) => candidate.id === selected);
  const execution = node ? overlay.executions.get(node.id) : undefined;
  const output = node ? overlay.outputs.get(node.id) : undefined;
  return (
    <aside className="inspector" data-testid="inspector">
      {!node ? (
        <>
          <div className="inspector-title">Run {run.id}</div>
          <dl className="facts">
            <dt>Canvas</dt>
            <dd>{run.canvas}</dd>
            <dt>Status</dt>
            <dd>
              <span className={`pill state-${run.status}`}>{run.status}</span>
            </dd>
            <dt>Started</dt>
            <dd>{formatTime(run.createdAt)}</dd>
            <dt>Duration</dt>
            <dd>{runDuration(run)}</dd>
            {run.error && (
              <>
                <dt>Error</dt>
                <dd className="field-error">{run.error}</dd>
              </>
            )}
            <dt>Input</dt>
            <dd>
              <pre className="json">{JSON.stringify(run.input, null, 2)}</pre>
            </dd>
          </dl>
          <h3 className="palette-group">Executions</h3>
          <table className="table compact" data-testid="run-executions">
            <tbody>
              {executions.map((execution) => (
                <tr key={execution.id} className="clickable" onClick={() => onPick(execution.node)}>
                  <td>{execution.nodeName}</td>
                  <td>
                    <span className={`pill state-${STATE_OF[execution.status] ?? execution.status}`}>{STATE_OF[execution.status] ?? execution.status}</span>
                  </td>
                  <td className="muted">{execution.channel ?? ""}</td>
                  <td className="muted">
                    {execution.startedAt !== null && execution.finishedAt !== null ? formatDuration(execution.finishedAt - execution.startedAt) : ""}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">Click a node to see its output event.</p>
        </>
      ) : (
        <>
          <div className="inspector-title">{node.name}</div>
          <div className="muted small">{node.component}</div>
          {execution ? (
            <dl className="facts">
              <dt>State</dt>
              <dd>
                <span className={`pill state-${overlay.states.get(node.id)}`}>{overlay.states.get(node.id)}</span>
              </dd>
              <dt>Time</dt>
              <dd>
                <NodeTime id={`inspector-${node.id}`} execution={execution} />
              </dd>
              {execution.channel && (
                <>
                  <dt>Channel</dt>
                  <dd>{execution.channel}</dd>
                </>
              )}
              {execution.error && (
                <>
                  <dt>Error</dt>
                  <dd>
                    <pre className="field-error" data-testid="execution-error">
                      {execution.error}
                    </pre>
                  </dd>
                </>
              )}
            </dl>
          ) : (
            <p className="muted small">This node has not run.</p>
          )}
          {output !== undefined && output !== "" && (
            <>
              <h3 className="palette-group">Live output</h3>
              <pre className="live-output" data-testid="live-output">
                {output}
              </pre>
            </>
          )}
          {execution && <EventPayload runId={runId} execution={execution} />}
          {node.configuration && (
            <details className="docs">
              <summary>Configuration</summary>
              <pre className="json">{JSON.stringify(node.configuration, null, 2)}</pre>
            </details>
          )}
        </>
      )}
      <Resources resources={resources} />
    </aside>
  );
}

export function RunView({ id }: { id: string }) {
  const { canvas, snapshot, outputs, error, setSnapshot } = useRun(id);
  const byName = useStore(palette, (s) => s.byName);
  const [selected, setSelected] = useState<string | null>(null);
  // Until the user picks a node, the inspector follows the node that runs now.
  const [pinned, setPinned] = useState(false);
  const [cancelError, setCancelError] = useState("");
  const executions = snapshot?.executions;
  const overlay = useMemo(() => (canvas && executions ? overlayOf(canvas, executions, outputs) : null), [canvas, executions, outputs]);
  const autoPositions = useMemo(() => (canvas ? missingPositions(canvas.spec.nodes, canvas.spec.edges) : {}), [canvas]);
  const noIssues = useMemo(() => new Map<string, number>(), []);
  const run = snapshot?.run;

  useEffect(() => {
    if (pinned || !overlay) return;
    let newest: Execution | null = null;
    for (const execution of overlay.executions.values()) {
      if (execution.status !== "running") continue;
      if (!newest || (execution.startedAt ?? 0) >= (newest.startedAt ?? 0)) newest = execution;
    }
    if (newest) setSelected(newest.node);
  }, [overlay, pinned]);

  const pick = useCallback((node: string | null) => {
    setPinned(node !== null);
    setSelected(node);
  }, []);

  const cancel = useCallback(() => {
    setCancelError("");
    api.cancelRun(id).then(
      ({ run: header }) => setSnapshot({ ...(snapshot ?? { executions: [], resources: [] }), run: header }),
      (failure: unknown) => setCancelError(errorText(failure)),
    );
  }, [id, snapshot, setSnapshot]);

  return (
    <div className="run-view" data-testid="run-view" data-run-id={id} data-status={run?.status ?? ""}>
      <div className="run-bar">
        <a href="#/runs" className="link">
          ← Runs
        </a>
        <strong>{run?.canvas ?? "…"}</strong>
        <code className="muted">{id}</code>
        <span className={`pill state-${run?.status ?? "idle"}`} data-testid="run-status">
          {run?.status ?? "loading"}
        </span>
        {run && <span className="muted small">started {formatTime(run.createdAt)}</span>}
        {run && !isFinished(run) && (
          <button type="button" className="btn danger" data-testid="btn-cancel" disabled={run.status === "cancelling"} onClick={cancel}>
            {run.status === "cancelling" ? "Cancelling…" : "Cancel run"}
          </button>
        )}
        {(error || cancelError) && <span className="field-error">{cancelError || error}</span>}
        {run?.error && <span className="field-error">{run.error}</span>}
      </div>
      <div className="run-body">
        {canvas && overlay && run ? (
          <>
            <Graph
              doc={canvas}
              byName={byName}
              issueCounts={noIssues}
              autoPositions={autoPositions}
              selected={selected}
              generation={0}
              overlay={overlay}
              readOnly
              onSelect={pick}
            />
            <RunInspector runId={id} canvas={canvas} selected={selected} overlay={overlay} run={run} resources={snapshot?.resources ?? []} executions={executions ?? []} onPick={pick} />
          </>
        ) : (
          <div className="loading">{error || "Loading the run…"}</div>
        )}
      </div>
    </div>
  );
}
