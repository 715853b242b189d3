// bench_serve.test.ts: `kiln bench serve` against the real OpenAI server (stories260K on the cpu
// backend, the Engine, 127.0.0.1, ephemeral port; see openai_helpers.ts): closed loop at
// concurrency 1 and 4 (JSON shape, counts that add up, percentiles of the results), open loop at a
// seeded Poisson rate (requests never sent before their arrival time), chat, non-streaming, counting
// chunks without usage, the model found through GET /v1/models, an unknown model (every request a
// 404: error rate 1), a refused connection, and the command itself through bin/kiln.mjs.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kiln } from "../helpers/kiln_cli.js";
import type { BenchServeOptions, LevelReport } from "../../src/bench_serve/index.js";
import { PoissonArrivals, percentile, runBenchServe } from "../../src/bench_serve/index.js";
import type { Served } from "./openai_helpers.js";
import { MODEL, serve } from "./openai_helpers.js";

let s: Served;
let base: BenchServeOptions;
let dir: string;

beforeAll(async () => {
  s = await serve();
  dir = mkdtempSync(join(tmpdir(), "kiln-bench-serve-"));
  base = {
    url: `${s.url}/v1`, endpoint: "completions", model: MODEL, stream: true, includeUsage: true, maxTokens: 8, ignoreEos: true,
    temperature: 0, timeoutMs: 30_000, prompts: ["Once upon a time", "The cat"], levels: [{ mode: "concurrency", concurrency: 1 }],
    requests: 4, seed: 0, warmup: 0,
  };
});

afterAll(async () => {
  await s?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The invariants every level keeps, whatever happened. */
function checkCounts(l: LevelReport): void {
  expect(l.requests).toBe(l.successes + l.errors);
  expect(l.results).toHaveLength(l.requests);
  expect(l.results.map((r) => r.index)).toEqual(Array.from({ length: l.requests }, (_, i) => i));
  expect(l.errors).toBe(l.results.filter((r) => r.error).length);
  expect(Object.values(l.errorsByKind).reduce((n, e) => n + e.count, 0)).toBe(l.errors);
  expect(l.errorRate).toBeCloseTo(l.requests ? l.errors / l.requests : 0, 12);
  expect(l.outputTokens).toBe(l.results.filter((r) => !r.error).reduce((n, r) => n + r.outputTokens, 0));
  expect(l.outputTokensPerS).toBeCloseTo(l.outputTokens / l.durationS, 6);
  expect(l.requestsPerS).toBeCloseTo(l.successes / l.durationS, 6);
  for (const r of l.results) expect(r.startMs + r.e2eMs).toBeLessThanOrEqual(l.durationS * 1000 + 1e-6);
}

describe("closed loop against kiln's server", () => {
  it("concurrency 1 and 4: the report's shape, counts and percentiles", async () => {
    const report = await runBenchServe({ ...base, levels: [{ mode: "concurrency", concurrency: 1 }, { mode: "concurrency", concurrency: 4 }], warmup: 1 });
    expect(report).toMatchObject({
      tool: "kiln bench serve", stopped: false, warmup: { requests: 1, errors: 0 },
      settings: { url: base.url, endpoint: "completions", model: MODEL, stream: true, includeUsage: true, maxTokens: 8, ignoreEos: true, prompts: 2, requestsPerLevel: 4 },
    });
    expect(new Date(report.startedAt).getTime()).not.toBeNaN();
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    expect(report.levels.map((l) => l.label)).toEqual(["concurrency 1", "concurrency 4"]);
    for (const l of report.levels) {
      checkCounts(l);
      expect(l).toMatchObject({ requests: 4, successes: 4, errors: 0, errorRate: 0, errorsByKind: {}, outputTokens: 32, tokensFrom: "usage" });
      for (const r of l.results) {
        expect(r.outputTokens).toBe(8);
        expect(r.ttftMs).toBeGreaterThan(0);
        expect(r.ttftMs!).toBeLessThanOrEqual(r.e2eMs);
        // TPOT = (end - first) / (tokens - 1), and end - first = e2e - ttft
        expect(r.tpotMs! * 7).toBeCloseTo(r.e2eMs - r.ttftMs!, 6);
      }
      const ttft = l.results.map((r) => r.ttftMs!);
      expect(l.ttftMs).toEqual({ count: 4, mean: expect.closeTo(ttft.reduce((a, b) => a + b) / 4, 9), p50: percentile(ttft, 50), p99: percentile(ttft, 99) });
      expect(l.e2eMs.p99).toBe(percentile(l.results.map((r) => r.e2eMs), 99));
      expect(l.tpotMs.p50).toBe(percentile(l.results.map((r) => r.tpotMs!), 50));
    }
    // closed loop: concurrency 1 sends each request after the last one ended; concurrency 4 sends all four at once
    const [one, four] = report.levels as [LevelReport, LevelReport];
    for (let i = 1; i < 4; i++) expect(one.results[i]!.startMs).toBeGreaterThanOrEqual(one.results[i - 1]!.startMs + one.results[i - 1]!.e2eMs);
    for (const r of four.results) expect(r.startMs).toBeLessThan(four.results[0]!.e2eMs);
  });

  it("finds the model through GET /v1/models when none is given; chat; whole responses; chunks without usage", async () => {
    const { model: _, ...noModel } = base;
    const found = await runBenchServe({ ...noModel, requests: 1 });
    expect(found.settings.model).toBe(MODEL);
    expect(found.levels[0]!.successes).toBe(1);

    const chat = (await runBenchServe({ ...base, endpoint: "chat", requests: 2 })).levels[0]!;
    checkCounts(chat);
    expect(chat).toMatchObject({ successes: 2, outputTokens: 16 });
    expect(chat.ttftMs.count).toBe(2);

    const whole = (await runBenchServe({ ...base, stream: false, requests: 2 })).levels[0]!;
    checkCounts(whole);
    expect(whole).toMatchObject({ successes: 2, outputTokens: 16, tokensFrom: "usage", ttftMs: { count: 0, p50: null }, tpotMs: { count: 0 } });

    const chunks = (await runBenchServe({ ...base, includeUsage: false, requests: 2 })).levels[0]!;
    checkCounts(chunks);
    expect(chunks.tokensFrom).toBe("chunks");
    for (const r of chunks.results) expect(r.outputTokens).toBeGreaterThan(0), expect(r.outputTokens).toBeLessThanOrEqual(8);
  });
});

describe("open loop", () => {
  it("sends each request at (never before) its seeded Poisson arrival time", async () => {
    const rate = 40;
    const report = await runBenchServe({ ...base, levels: [{ mode: "rate", rate }], requests: 5, seed: 11 });
    const l = report.levels[0]!;
    checkCounts(l);
    expect(l).toMatchObject({ label: "rate 40/s", mode: "rate", rate, successes: 5 });
    const arrivals = new PoissonArrivals(11, rate);
    for (const r of l.results) expect(r.startMs).toBeGreaterThanOrEqual(arrivals.next() * 1000 - 1);
  });

  it("a duration ends the level: no request is sent after it", async () => {
    const l = (await runBenchServe({ ...base, levels: [{ mode: "rate", rate: 20 }], requests: undefined, durationS: 0.3, seed: 2 })).levels[0]!;
    checkCounts(l);
    const expected: number[] = [];
    const arrivals = new PoissonArrivals(2, 20);
    for (let t = arrivals.next(); t < 0.3; t = arrivals.next()) expected.push(t);
    expect(l.requests).toBe(expected.length);
    // NOTE: the count above is the real check; a send can still be late when the in-process server keeps the loop busy.
    for (const r of l.results) expect(r.startMs).toBeLessThan(300 + 500);
  });
});

describe("errors are reported, not thrown", () => {
  it("an unknown model: every request a 404, error rate 1, no tokens", async () => {
    const report = await runBenchServe({ ...base, model: "no-such-model", levels: [{ mode: "concurrency", concurrency: 2 }], requests: 3 });
    const l = report.levels[0]!;
    checkCounts(l);
    expect(l).toMatchObject({ requests: 3, successes: 0, errors: 3, errorRate: 1, outputTokens: 0, requestsPerS: 0, ttftMs: { count: 0, p99: null } });
    expect(Object.keys(l.errorsByKind)).toEqual(["http 404"]);
    expect(l.errorsByKind["http 404"]!.message).toContain("no-such-model");
    for (const r of l.results) expect(r.error).toMatchObject({ kind: "http", status: 404 });
  });

  it("a refused connection is a network error", async () => {
    // NOTE: a port that was free a moment ago (fetch refuses some low ports outright, such as 1).
    const probe = createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, "127.0.0.1", () => resolve((probe.address() as AddressInfo).port)));
    await new Promise((resolve) => probe.close(resolve));
    const l = (await runBenchServe({ ...base, url: `http://127.0.0.1:${port}/v1`, requests: 2 })).levels[0]!;
    checkCounts(l);
    expect(l.errorRate).toBe(1);
    expect(l.errorsByKind.network!.message).toContain("ECONNREFUSED");
  });
});


describe("kiln bench serve (the command)", () => {
  it("runs the levels, prints the table, writes --out and --md, exits 0 (even with request errors)", async () => {
    const out = join(dir, "r.json");
    const md = join(dir, "r.md");
    const r = await kiln("bench", "serve", "--url", `${s.url}/v1`, "--concurrency", "1,2", "--requests", "2", "--max-tokens", "4", "--ignore-eos", "--out", out, "--md", md);
    expect(r.stderr).toContain("kiln bench serve: concurrency 2: 2/2, 0 errors");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`kiln bench serve: ${MODEL} at ${s.url}/v1 (completions)`);
    expect(r.stdout).toMatch(/\| concurrency 2 \| 2 \| 0 \(0%\) \|/);
    expect(readFileSync(md, "utf8")).toBe(r.stdout);
    const json = JSON.parse(readFileSync(out, "utf8")) as { levels: LevelReport[] };
    expect(json.levels.map((l) => [l.label, l.successes, l.outputTokens])).toEqual([["concurrency 1", 2, 8], ["concurrency 2", 2, 8]]);

    const bad = await kiln("bench", "serve", "--url", `${s.url}/v1`, "--model", "nope", "--requests", "1", "--quiet");
    expect(bad.code).toBe(0);
    expect(bad.stderr).toBe("");
    expect(bad.stdout).toContain("| concurrency 1 | 1 | 1 (100%) |");
    expect(bad.stdout).toContain("- concurrency 1: 1 x http 404: ");
  });

  it("exits 2 on a usage error, with the message and the usage", async () => {
    const r = await kiln("bench", "serve", "--concurrency", "0");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--concurrency must be an integer >= 1");
    expect(r.stderr).toContain("Usage: kiln bench serve");
    const sub = await kiln("bench", "kernels");
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain("unknown benchmark 'kernels'");
  });
});
