// Run history from the store (runs started by the CLI too), refreshed every 2 s while visible.
import { useEffect, useState } from "react";
import { api, errorText } from "../api";
import { navigate } from "../router";
import type { RunHeader } from "../types";
import { formatTime, runDuration } from "./RunView";

const REFRESH_MS = 2000;

export function RunsList() {
  const [runs, setRuns] = useState<RunHeader[] | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const load = () => {
      if (document.visibilityState === "hidden") {
        timer = setTimeout(load, REFRESH_MS);
        return;
      }
      api.runs(100).then(
        ({ runs: next }) => {
          if (!alive) return;
          setRuns(next);
          setError("");
        },
        (failure: unknown) => alive && setError(errorText(failure)),
      ).finally(() => {
        if (alive) timer = setTimeout(load, REFRESH_MS);
      });
    };
    load();
    return () => {
      alive = false;
      if (timer) clearTimeout(timer);
    };
  }, []);

  return (
    <div className="table-page">
      <h2>Runs</h2>
      {error && <div className="field-error">{error}</div>}
      <table className="table" data-testid="runs-list">
        <thead>
          <tr>
            <th>Canvas</th>
            <th>Status</th>
            <th>Started</th>
            <th>Duration</th>
            <th>Run</th>
          </tr>
        </thead>
        <tbody>
          {(runs ?? []).map((run) => (
            <tr key={run.id} className="clickable" data-testid={`run-row-${run.id}`} onClick={() => navigate(`#/runs/${encodeURIComponent(run.id)}`)}>
              <td>{run.canvas}</td>
              <td>
                <span className={`pill state-${run.status}`}>{run.status}</span>
              </td>
              <td>{formatTime(run.createdAt)}</td>
              <td>{runDuration(run)}</td>
              <td>
                <code className="muted">{run.id}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs !== null && runs.length === 0 && <p className="muted">No runs yet. Start one with ▶ Run, or from the CLI with daytonaflow run.</p>}
    </div>
  );
}
