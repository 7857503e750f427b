// A run's live state: the first GET, then the SSE stream's snapshots, output pieces and end.
import { useEffect, useRef, useState } from "react";
import { api, errorText, runStream } from "../api";
import type { CanvasDoc, RunHeader, RunSnapshot } from "../types";

// Live output kept per node in the browser (the server keeps the full record).
const OUTPUT_LIMIT = 64 * 1024;

export interface LiveRun {
  canvas: CanvasDoc | null;
  snapshot: RunSnapshot | null;
  outputs: Map<string, string>;
  error: string;
}

export function isFinished(run: RunHeader | undefined): boolean {
  return !!run && run.status !== "running" && run.status !== "cancelling";
}

export function useRun(id: string): LiveRun & { setSnapshot: (snapshot: RunSnapshot) => void } {
  const [canvas, setCanvas] = useState<CanvasDoc | null>(null);
  const [snapshot, setSnapshot] = useState<RunSnapshot | null>(null);
  const [outputs, setOutputs] = useState<Map<string, string>>(() => new Map());
  const [error, setError] = useState("");
  const buffer = useRef(new Map<string, string>());
  const flushScheduled = useRef(false);

  useEffect(() => {
    let alive = true;
    let stream: EventSource | null = null;
    let streamed = false;
    api.run(id).then(
      (detail) => {
        if (!alive) return;
        setCanvas(detail.canvas);
        // The stream's first snapshot may have overtaken this answer; the newer one stays.
        if (!streamed) setSnapshot({ run: detail.run, executions: detail.executions, resources: detail.resources });
      },
      (failure: unknown) => alive && setError(errorText(failure)),
    );

    const flush = () => {
      flushScheduled.current = false;
      if (!alive || buffer.current.size === 0) return;
      const pieces = buffer.current;
      buffer.current = new Map();
      setOutputs((current) => {
        const next = new Map(current);
        for (const [node, text] of pieces) {
          const joined = (next.get(node) ?? "") + text;
          next.set(node, joined.length > OUTPUT_LIMIT ? joined.slice(-OUTPUT_LIMIT) : joined);
        }
        return next;
      });
    };

    stream = runStream(id);
    let opened = false;
    stream.onopen = () => {
      // A reconnected stream replays the output from the start: start over instead of doubling it.
      if (opened) {
        buffer.current = new Map();
        setOutputs(new Map());
      }
      opened = true;
    };
    stream.addEventListener("snapshot", (event) => {
      if (!alive) return;
      streamed = true;
      setSnapshot(JSON.parse((event as MessageEvent<string>).data) as RunSnapshot);
    });
    stream.addEventListener("output", (event) => {
      const piece = JSON.parse((event as MessageEvent<string>).data) as { node: string; text: string };
      buffer.current.set(piece.node, (buffer.current.get(piece.node) ?? "") + piece.text);
      if (!flushScheduled.current) {
        flushScheduled.current = true;
        // Output can arrive in many small pieces; one render per frame is plenty.
        requestAnimationFrame(flush);
      }
    });
    stream.addEventListener("end", (event) => {
      const { run } = JSON.parse((event as MessageEvent<string>).data) as { run: RunHeader };
      setSnapshot((current) => (current ? { ...current, run } : current));
      stream?.close();
      // The last snapshot (resources released after the end) is fetched once more.
      api.run(id).then(
        (detail) => alive && setSnapshot({ run: detail.run, executions: detail.executions, resources: detail.resources }),
        () => undefined,
      );
    });
    stream.onerror = () => {
      // EventSource reconnects on its own; once the run is over there is nothing more to hear.
      if (stream && stream.readyState === EventSource.CLOSED) setError((e) => e || "the run's stream closed");
    };
    return () => {
      alive = false;
      stream?.close();
    };
  }, [id]);

  return { canvas, snapshot, outputs, error, setSnapshot };
}
