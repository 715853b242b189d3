// tokenize_pool.ts: tokenizes a list of texts on K worker threads and returns the ids in the texts'
// order, whatever order the workers finish in. Each worker takes the next text as soon as it is idle.
// It owns starting and stopping the threads (also from source: under tsx or vitest a worker cannot
// load .ts by itself, so it first registers tsx's loader); it does not know shards or corpora.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { TokenizerRef } from "./token_codec.js";

type Reply = { id: number; ids: Uint32Array } | { id: number; error: string };

function startWorker(ref: TokenizerRef): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./tokenize_worker.js", here), { workerData: ref });
  // NOTE: running from source (a clone, tests): the .ts worker needs tsx's loader registered in its own thread.
  const tsx = tsxEsmApi(here);
  const body = new URL("./tokenize_worker.ts", here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(body)}); });`;
  return new Worker(boot, { eval: true, workerData: ref });
}

/** tsx's ESM register API as a file URL (require.resolve would give its CommonJS build). */
function tsxEsmApi(from: string): string {
  const pkgPath = createRequire(from).resolve("tsx/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { exports: Record<string, { import?: { default?: string } }> };
  const rel = pkg.exports["./esm/api"]?.import?.default;
  if (rel === undefined) throw new Error(`data prepare: ${pkgPath} has no ESM export ./esm/api (is tsx too old?)`);
  return pathToFileURL(join(dirname(pkgPath), rel)).href;
}

/** ids[i] are the tokens of texts[i]; rejects with the first error a worker reports. */
export async function tokenizeOnWorkers(ref: TokenizerRef, texts: readonly string[], workers: number): Promise<Uint32Array[]> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`data prepare: workers must be a positive integer, got ${workers}`);
  const out = new Array<Uint32Array>(texts.length);
  const pool = Array.from({ length: Math.min(workers, Math.max(1, texts.length)) }, () => startWorker(ref));
  try {
    let next = 0;
    await Promise.all(
      pool.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const give = (): void => {
              if (next >= texts.length) return resolve();
              const id = next++;
              w.postMessage({ id, text: texts[id] });
            };
            w.on("message", (r: Reply) => {
              if ("error" in r) return reject(new Error(`data prepare: tokenizing task ${r.id}: ${r.error}`));
              out[r.id] = r.ids;
              give();
            });
            w.on("error", (err) => reject(new Error(`data prepare: a tokenizer worker failed: ${err.message}`)));
            w.on("exit", (code) => {
              if (next < texts.length || code !== 0) reject(new Error(`data prepare: a tokenizer worker exited (code ${code}) before the work was done`));
            });
            give();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return out;
}
