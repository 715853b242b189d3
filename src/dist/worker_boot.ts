// worker_boot.ts: starts one of src/dist's worker threads (the store's host, the heartbeats) from its
// module's URL, in a build (dist/*.js) or from source (a clone, tests, under tsx). It owns only that.
// NOTE: from source a .ts worker needs tsx's loader registered in its own thread first (as
// train/data/tokenize_pool.ts does; dist may not import train).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/** A Worker running `file` (a name next to `from`, without extension) with `workerData`. */
export function startDistWorker(from: string, file: string, workerData: unknown): Worker {
  if (!from.endsWith(".ts")) return new Worker(new URL(`./${file}.js`, from), { workerData });
  const pkgPath = createRequire(from).resolve("tsx/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { exports: Record<string, { import?: { default?: string } }> };
  const rel = pkg.exports["./esm/api"]?.import?.default;
  if (rel === undefined) throw new Error(`${file}: ${pkgPath} has no ESM export ./esm/api (is tsx too old?)`);
  const tsx = pathToFileURL(join(dirname(pkgPath), rel)).href;
  const body = new URL(`./${file}.ts`, from).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(body)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
