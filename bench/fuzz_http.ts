// fuzz_http.ts is the long fuzz run of the OpenAI HTTP API (`npm run fuzz:http`): the fuzz test's cases
// (bench/lib/http_fuzz_cases.ts: every field of completions and chat completions mutated, malformed
// JSON, invalid UTF-8, bodies over the limit, odd static paths) against one real server with the bundled stories260K on 127.0.0.1, several
// clients at once, each answer judged as in the test (bench/lib/http_fuzz_run.ts). It writes the
// figures (cases, verdicts, statuses, latency, largest resident memory, the first failures) to
// bench/results/fuzz-http-<machine>.json; docs/fuzzing.md quotes them.
// NOTE: the memory figure is this process's (server and fuzz clients share it); the clients hold one
// answer each.
//
//   npx tsx bench/fuzz_http.ts [--cases 10000] [--concurrency 4] [--seed 1] [--timeout-ms 20000]

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { getBackend } from "../src/index.js";
import { builtinModel, loadModel } from "../src/models/formats/load_model.js";
import { fromLoaded } from "../src/models/language_model.js";
import { loadLlama2cTokenizer } from "../src/models/tokenizers/index.js";
import { Engine } from "../src/serve/engine.js";
import { OpenAIServer } from "../src/serve/openai/server.js";
import { machineInfo } from "./lib/machine.js";
import type { FuzzCase } from "./lib/http_fuzz_cases.js";
import { FUZZ_MAX_BODY, fuzzCase } from "./lib/http_fuzz_cases.js";
import type { Verdict } from "./lib/http_fuzz_run.js";
import { judge, send } from "./lib/http_fuzz_run.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be an integer >= 1, got ${process.argv[i + 1]}`);
  return v;
}

const cases = arg("cases", 10_000);
const concurrency = arg("concurrency", 4);
const seed = arg("seed", 1);
const timeoutMs = arg("timeout-ms", 20_000);
const MODEL = "stories260K";

const loaded = loadModel(MODEL);
const tokenizer = loadLlama2cTokenizer(builtinModel(MODEL)!.tokenizer, loaded.config.vocabSize);
const model = fromLoaded(loaded, await getBackend("cpu"));
const engine = new Engine([{ id: MODEL, model, tokenizer, stopTokenIds: tokenizer.eosId === undefined ? [] : [tokenizer.eosId] }], { numBlocks: 64, maxNumSeqs: 16, maxWaiting: 32 });
await engine.ready();
const staticDir = mkdtempSync(join(tmpdir(), "kiln-fuzz-"));
writeFileSync(join(staticDir, "index.html"), "<!doctype html><title>fuzz</title>");
const server = new OpenAIServer(engine, { log: () => {}, maxBodyBytes: FUZZ_MAX_BODY, staticDir });
const { port } = await server.listen(0, "127.0.0.1");
const url = `http://127.0.0.1:${port}`;

const verdicts = new Map<Verdict, number>();
const statuses = new Map<string, number>();
const kinds = new Map<string, number>();
const failures: { verdict: Verdict; why: string; path: string; kind: string; body: string }[] = [];
const latencies: number[] = [];
const rss0 = process.memoryUsage().rss;
let maxRss = rss0;
const bump = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);

// NOTE: cases are drawn in batches from one seeded stream, so a run is reproducible and never holds 10,000 bodies.
const BATCH = 200;
const t0 = performance.now();
for (let done = 0; done < cases; done += BATCH) {
  const batch: FuzzCase[] = fc.sample(fuzzCase, { numRuns: Math.min(BATCH, cases - done), seed: seed + done });
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < batch.length) {
      const c = batch[next++]!;
      const a = await send(url, c, timeoutMs);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
      const j = judge(c, a);
      bump(verdicts, j.verdict);
      bump(statuses, a.status === undefined ? (a.error ?? "none") : String(a.status));
      bump(kinds, c.kind);
      latencies.push(a.ms);
      if (j.verdict !== "ok" && failures.length < 20) {
        failures.push({ verdict: j.verdict, why: j.why ?? "", path: c.path, kind: c.kind, body: Buffer.from(c.body).toString("utf8").slice(0, 400) });
      }
    }
  }));
  process.stdout.write(`\r${Math.min(done + BATCH, cases)}/${cases} cases, ${cases > 0 ? [...verdicts].filter(([v]) => v !== "ok").reduce((a, [, n]) => a + n, 0) : 0} failures`);
}
const seconds = (performance.now() - t0) / 1000;
const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (e: Error) => e.message);
await server.close(2000);
await engine.close();
rmSync(staticDir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const q = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!);
const machine = machineInfo();
const results = {
  date: new Date().toISOString(), machine, node: process.version, cases, concurrency, seed, timeoutMs, seconds: Math.round(seconds),
  verdicts: Object.fromEntries(verdicts), statuses: Object.fromEntries([...statuses].sort()), kinds: Object.fromEntries(kinds),
  crashes: (verdicts.get("5xx") ?? 0) + (verdicts.get("reset") ?? 0), hangs: verdicts.get("hang") ?? 0,
  latencyMs: { p50: q(0.5), p99: q(0.99), max: Math.round(latencies.at(-1)!) },
  rssMiB: { start: Math.round(rss0 / 2 ** 20), max: Math.round(maxRss / 2 ** 20) },
  healthAfter: health, failures,
};
mkdirSync("bench/results", { recursive: true });
const file = `bench/results/fuzz-http-${machine.tag}.json`;
writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
console.log(`\n${JSON.stringify({ ...results, failures: failures.length, machine: machine.cpu }, null, 1)}\nwrote ${file}`);
process.exit(results.crashes + results.hangs + failures.length === 0 && health === 200 ? 0 : 1);
