// Bundles the canvas UI into ../static (committed, so `pip install .` users need no Node).
// `node build.mjs` — ui/_build.py runs it and records the source digest in build.json.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static");
mkdirSync(out, { recursive: true });

// NOMIN=1 node build.mjs: an unminified development build for profiling (never commit it).
const dev = !!process.env.NOMIN;

await build({
  entryPoints: { app: join(here, "src", "main.tsx") },
  outdir: out,
  bundle: true,
  minify: !dev,
  format: "iife",
  target: ["es2022"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": dev ? '"development"' : '"production"' },
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(out, "index.html"));
