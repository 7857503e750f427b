// The app shell: top bar and the page of the current hash route.
import { useEffect, useState } from "react";
import { api, errorText } from "./api";
import { newEmpty, openPath } from "./editor/actions";
import { Editor } from "./editor/Editor";
import { hasUnsavedChanges, LAST_PATH_KEY } from "./editor/state";
import { TopBar } from "./editor/TopBar";
import { loadPalette } from "./palette";
import { useRoute } from "./router";
import { RunsList } from "./runs/RunsList";
import { RunView } from "./runs/RunView";
import { SandboxesPage } from "./sandboxes/SandboxesPage";

/** Reopens the last file (a reload keeps working on it), else the first CANVAS argument, else an empty canvas. */
async function openInitial(): Promise<void> {
  const last = localStorage.getItem(LAST_PATH_KEY);
  if (last) {
    try {
      return await openPath(last);
    } catch {
      localStorage.removeItem(LAST_PATH_KEY);
    }
  }
  try {
    const { files } = await api.canvases();
    const argument = files.find((file) => !file.example);
    if (argument) return await openPath(argument.path);
  } catch {
    // Fall through to an empty canvas.
  }
  newEmpty();
}

export function App() {
  const route = useRoute();
  const [ready, setReady] = useState(false);
  const [error, setError] = useState("");

  useEffect(() => {
    const warn = (event: BeforeUnloadEvent) => {
      if (hasUnsavedChanges()) event.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, []);

  useEffect(() => {
    Promise.all([loadPalette(), openInitial()]).then(
      () => setReady(true),
      (failure: unknown) => {
        setError(errorText(failure));
        setReady(true);
      },
    );
  }, []);

  let page;
  if (!ready) page = <div className="loading">Loading…</div>;
  else if (route.page === "run") page = <RunView key={route.id} id={route.id} />;
  else if (route.page === "runs") page = <RunsList />;
  else if (route.page === "sandboxes") page = <SandboxesPage />;
  else page = <Editor />;

  return (
    <div className="app">
      <TopBar route={route} />
      {error && <div className="banner error">{error}</div>}
      <main className="page">{page}</main>
    </div>
  );
}
