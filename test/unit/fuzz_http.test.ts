// fuzz_http.test.ts: property-based fuzzing of the OpenAI HTTP API with fast-check, against one real
// server (the bundled stories260K on the Engine, 127.0.0.1): request bodies for completions and chat
// completions with any field given a wrong type, a huge, negative or non-finite number, a long or odd
// string, unknown fields; malformed JSON; invalid UTF-8; bodies over the limit; odd static paths. Every answer must come within 20 s, over a
// connection that was not reset, never 5xx, a 4xx naming the field at fault (413 over the limit), a whole 200 whose logprob
// tokens spell its text; the process's memory stays bounded and /health answers after.
// KILN_FUZZ_RUNS sets the number of cases (default 300, ~15 s here); bench/fuzz_http.ts is the long run.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FUZZ_MAX_BODY, fuzzCase } from "../../bench/lib/http_fuzz_cases.js";
import { judge, send } from "../../bench/lib/http_fuzz_run.js";
import type { Served } from "./openai_helpers.js";
import { serve, waitFor } from "./openai_helpers.js";

const RUNS = Number(process.env.KILN_FUZZ_RUNS ?? 300);
const ANSWER_MS = 20_000;
/** Most the process's resident memory may grow over the run. */
const MAX_RSS_GROWTH = 512 * 2 ** 20;

let s: Served;
const dir = mkdtempSync(join(tmpdir(), "kiln-fuzz-"));

beforeAll(async () => {
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>fuzz</title>");
  s = await serve({ maxNumSeqs: 16, maxWaiting: 32, maxBodyBytes: FUZZ_MAX_BODY, staticDir: dir });
});

afterAll(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

it(`${RUNS} fuzzed requests: no reset, hang or 5xx; 4xx name the field; memory bounded; /health after`, async () => {
  const rss0 = process.memoryUsage().rss;
  let maxRss = rss0;
  await fc.assert(
    fc.asyncProperty(fuzzCase, async (c) => {
      const a = await send(s.url, c, ANSWER_MS);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
      const j = judge(c, a);
      if (j.verdict !== "ok") throw new Error(`${j.verdict}: ${j.why} (${c.path}, ${c.kind}: ${Buffer.from(c.body).toString("utf8").slice(0, 300)})`);
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
  expect(maxRss - rss0).toBeLessThan(MAX_RSS_GROWTH);
  const health = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(5000) });
  expect(health.status).toBe(200);
  expect(await waitFor(async () => { const st = await s.engine.stats(); return st.running === 0 && st.waiting === 0; })).toBe(true);
}, 120_000);
