// The sandboxes the backend holds (local server or Daytona cloud), with delete.
import { useCallback, useEffect, useState } from "react";
import { api, errorText } from "../api";
import type { Sandbox } from "../types";

export function SandboxesPage() {
  const [sandboxes, setSandboxes] = useState<Sandbox[] | null>(null);
  const [backend, setBackend] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(() => {
    api.sandboxes().then(
      (result) => {
        setSandboxes(result.sandboxes);
        setBackend(result.backend);
        setError("");
      },
      (failure: unknown) => setError(errorText(failure)),
    );
  }, []);

  useEffect(load, [load]);

  const remove = (sandbox: Sandbox) => {
    if (!window.confirm(`Delete sandbox ${sandbox.name || sandbox.id}?`)) return;
    setBusy(sandbox.id);
    api.deleteSandbox(sandbox.id).then(
      () => {
        setBusy(null);
        load();
      },
      (failure: unknown) => {
        setBusy(null);
        setError(errorText(failure));
      },
    );
  };

  return (
    <div className="table-page">
      <div className="row">
        <h2>Sandboxes</h2>
        {backend && <span className="pill">{backend}</span>}
        <button type="button" className="btn" data-testid="sandboxes-refresh" onClick={load}>
          Refresh
        </button>
      </div>
      {error && <pre className="field-error">{error}</pre>}
      <table className="table" data-testid="sandboxes-list">
        <thead>
          <tr>
            <th>ID</th>
            <th>Name</th>
            <th>State</th>
            <th>Labels</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(sandboxes ?? []).map((sandbox) => (
            <tr key={sandbox.id} data-testid={`sandbox-row-${sandbox.id}`}>
              <td>
                <code>{sandbox.id}</code>
              </td>
              <td>{sandbox.name}</td>
              <td>
                <span className={`pill state-${sandbox.state}`}>{sandbox.state}</span>
              </td>
              <td className="labels">
                {Object.entries(sandbox.labels ?? {}).map(([key, value]) => (
                  <span className="label-chip" key={key}>
                    {key}={value}
                  </span>
                ))}
              </td>
              <td>
                <button type="button" className="btn danger small" data-testid={`sandbox-delete-${sandbox.id}`} disabled={busy === sandbox.id} onClick={() => remove(sandbox)}>
                  {busy === sandbox.id ? "Deleting…" : "Delete"}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {sandboxes !== null && sandboxes.length === 0 && <p className="muted">No sandboxes.</p>}
    </div>
  );
}
