// Hash routes: #/ editor, #/runs history, #/runs/ID run view, #/sandboxes.
import { useSyncExternalStore } from "react";

export type Route = { page: "editor" } | { page: "runs" } | { page: "run"; id: string } | { page: "sandboxes" };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  const run = /^\/runs\/(.+)$/.exec(path);
  if (run) return { page: "run", id: decodeURIComponent(run[1]) };
  if (path === "/runs") return { page: "runs" };
  if (path === "/sandboxes") return { page: "sandboxes" };
  return { page: "editor" };
}

function subscribe(listener: () => void): () => void {
  window.addEventListener("hashchange", listener);
  return () => window.removeEventListener("hashchange", listener);
}

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  return parseRoute(hash);
}

export function navigate(hash: string): void {
  window.location.hash = hash;
}
