// bench_serve_units.test.ts: the pure parts of `kiln bench serve`: percentiles against hand-computed
// values, seeded Poisson arrivals (reproducible, scaled by the rate, the right mean), a level's summary
// from made-up results, the progress display (a bar on a terminal, lines elsewhere), and flag
// validation. The SSE reader it shares with the browser is sse_reader.test.ts's.
// Runs against real servers are bench_serve.test.ts and bench_serve_fake.test.ts.

import { describe, expect, it } from "vitest";
import { PoissonArrivals } from "../../src/bench_serve/arrivals.js";
import { mulberry32 } from "../../src/core/mulberry32.js";
import { percentile, summarize } from "../../src/bench_serve/percentiles.js";
import { levelProgress } from "../../src/bench_serve/progress.js";
import { levelReport, markdownReport } from "../../src/bench_serve/report.js";
import type { BenchReport } from "../../src/bench_serve/report.js";
import type { RequestResult } from "../../src/bench_serve/request.js";
import { benchServeCommand, parseBenchServeArgs } from "../../src/cli/bench_serve_command.js";
import { UsageError } from "../../src/cli/command.js";

describe("percentile", () => {
  it("interpolates linearly between the closest ranks (hand-computed)", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 0)).toBe(1);
    expect(percentile([1, 2, 3, 4], 100)).toBe(4);
    // rank 0.99 * 3 = 2.97: 3 + 0.97 * (4 - 3)
    expect(percentile([1, 2, 3, 4], 99)).toBeCloseTo(3.97, 12);
    // unsorted input; p25: rank 0.5 between 1 and 5
    expect(percentile([10, 1, 5], 50)).toBe(5);
    expect(percentile([10, 1, 5], 25)).toBe(3);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBe(50.5);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01, 12);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it("does not sort its input in place, and refuses p outside [0, 100]", () => {
    const v = [3, 1, 2];
    percentile(v, 50);
    expect(v).toEqual([3, 1, 2]);
    expect(() => percentile(v, 101)).toThrow(/p must be in \[0, 100\], got 101/);
    expect(() => percentile(v, NaN)).toThrow(RangeError);
  });

  it("summarize: count, mean, p50, p99; nulls for no samples", () => {
    expect(summarize([3, 1, 2])).toEqual({ count: 3, mean: 2, p50: 2, p99: expect.closeTo(2.98, 12) });
    expect(summarize([])).toEqual({ count: 0, mean: null, p50: null, p99: null });
  });
});

describe("Poisson arrivals", () => {
  const take = (a: PoissonArrivals, n: number) => Array.from({ length: n }, () => a.next());

  it("are reproducible from the seed, and differ between seeds", () => {
    expect(take(new PoissonArrivals(7, 3), 50)).toEqual(take(new PoissonArrivals(7, 3), 50));
    expect(take(new PoissonArrivals(8, 3), 50)).not.toEqual(take(new PoissonArrivals(7, 3), 50));
    // NOTE: pinned, so a change of generator (which would change every published schedule) is noticed.
    // mulberry32(0)'s first draw is 0.26642920868471265 in every implementation.
    expect(mulberry32(0)()).toBe(0.26642920868471265);
    const pinned = take(new PoissonArrivals(42, 1), 4);
    [0.9190539257810002, 1.5137876720655399, 3.4274828936148367, 4.535339907695484].forEach((t, i) => expect(pinned[i]).toBeCloseTo(t, 12));
  });

  it("scale with the rate: the schedule at rate r is the one at rate 1 divided by r", () => {
    const one = take(new PoissonArrivals(5, 1), 20);
    const four = take(new PoissonArrivals(5, 4), 20);
    four.forEach((t, i) => expect(t).toBeCloseTo(one[i]! / 4, 9));
  });

  it("increase, with exponential gaps of mean 1/rate", () => {
    const t = take(new PoissonArrivals(1, 5), 20_000);
    const gaps = t.map((x, i) => x - (i === 0 ? 0 : t[i - 1]!));
    expect(gaps.every((g) => g >= 0)).toBe(true);
    const mean = t[t.length - 1]! / t.length;
    expect(Math.abs(mean - 0.2) / 0.2).toBeLessThan(0.03);
    // exponential: P(gap > mean) = 1/e
    const over = gaps.filter((g) => g > 0.2).length / gaps.length;
    expect(Math.abs(over - Math.exp(-1))).toBeLessThan(0.02);
  });

  it("refuses a rate that is not positive", () => {
    expect(() => new PoissonArrivals(0, 0)).toThrow(/rate must be a positive number, got 0/);
  });
});

const ok = (index: number, tokens: number, e2eMs: number): RequestResult => ({
  index, startMs: index * 10, ttftMs: e2eMs / 4, tpotMs: tokens > 1 ? (e2eMs * 0.75) / (tokens - 1) : null, e2eMs, outputTokens: tokens, tokensFrom: "usage",
});

describe("levelReport", () => {
  it("counts successes and errors by kind; only successes enter tokens and latencies", () => {
    const results: RequestResult[] = [
      ok(0, 10, 100),
      { index: 1, startMs: 5, ttftMs: null, tpotMs: null, e2eMs: 3, outputTokens: 0, tokensFrom: "chunks", error: { kind: "http", status: 429, message: "queue full" } },
      ok(2, 20, 300),
      { index: 3, startMs: 30, ttftMs: 10, tpotMs: 1, e2eMs: 50, outputTokens: 4, tokensFrom: "chunks", error: { kind: "stream", message: "boom" } },
      { index: 4, startMs: 40, ttftMs: null, tpotMs: null, e2eMs: 2, outputTokens: 0, tokensFrom: "chunks", error: { kind: "http", status: 429, message: "again" } },
    ];
    const l = levelReport({ shape: { mode: "concurrency", concurrency: 2 }, results, elapsedMs: 500 });
    expect(l).toMatchObject({
      label: "concurrency 2", mode: "concurrency", concurrency: 2, requests: 5, successes: 2, errors: 3, errorRate: 0.6,
      durationS: 0.5, requestsPerS: 4, outputTokens: 30, outputTokensPerS: 60, tokensFrom: "usage",
      errorsByKind: { "http 429": { count: 2, message: "queue full" }, stream: { count: 1, message: "boom" } },
    });
    expect(l.e2eMs).toEqual({ count: 2, mean: 200, p50: 200, p99: 298 });
    expect(l.ttftMs.p50).toBe(50);
    const report: BenchReport = {
      tool: "kiln bench serve", startedAt: "2025-01-01T00:00:00.000Z", stopped: false, warmup: { requests: 0, errors: 0 }, levels: [l],
      settings: {
        url: "http://h/v1", endpoint: "completions", model: "m", stream: true, includeUsage: true, maxTokens: 64, ignoreEos: true, temperature: 0,
        prompts: 1, firstPrompt: "Once upon a time", requestsPerLevel: 5, durationS: null, seed: 0, warmup: 0, timeoutS: 120,
      },
    };
    const md = markdownReport(report);
    expect(md).toContain("| load | requests | errors | req/s | output tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | E2E p50 ms | E2E p99 ms |");
    expect(md).toContain("| concurrency 2 | 5 | 3 (60.0%) | 4.00 | 60.0 | 50.0 | 74.5 | ");
    expect(md).toContain("- concurrency 2: 2 x http 429: queue full");
    expect(md).toContain("m at http://h/v1 (completions), streaming, max_tokens 64 (ignore_eos), temperature 0, prompt \"Once upon a time\"");
  });

  it("an open-loop level with no results: zero rates, empty summaries", () => {
    const l = levelReport({ shape: { mode: "rate", rate: 2.5 }, results: [], elapsedMs: 0 });
    expect(l).toMatchObject({ label: "rate 2.5/s", rate: 2.5, requests: 0, errorRate: 0, requestsPerS: 0, tokensFrom: "none", ttftMs: { count: 0, p50: null } });
  });
});

describe("progress", () => {
  const sink = (isTTY: boolean) => {
    const out: string[] = [];
    return { isTTY, out, write: (t: string) => out.push(t) };
  };

  it("on a terminal: a bar redrawn in place, then a newline", () => {
    const s = sink(true);
    const p = levelProgress(s, "concurrency 4", 4, undefined);
    p.result(ok(0, 1, 1));
    p.result({ ...ok(1, 1, 1), error: { kind: "timeout", message: "t" } });
    p.finish();
    expect(s.out[0]).toMatch(/^\r\x1b\[Kconcurrency 4  \[-{24}\]  0\/4, 0 errors, \d+\.\d s$/);
    expect(s.out.at(-2)).toMatch(/^\r\x1b\[Kconcurrency 4  \[#{12}-{12}\]  2\/4, 1 error, \d+\.\d s$/);
    expect(s.out.at(-1)).toBe("\n");
  });

  it("elsewhere: whole lines; a duration-only level counts what is done", () => {
    const s = sink(false);
    const p = levelProgress(s, "rate 2/s", undefined, 10_000);
    p.result(ok(0, 1, 1));
    p.finish();
    expect(s.out).toEqual([expect.stringMatching(/^kiln bench serve: rate 2\/s: 0 done, 0 errors, \d+\.\d s\n$/), expect.stringMatching(/: 1 done, 0 errors, /)]);
  });
});

describe("bench serve flags", () => {
  const parse = (...argv: string[]) => parseBenchServeArgs(benchServeCommand, argv, {});

  it("defaults: concurrency 1 at 127.0.0.1:8080, streaming with usage, 64 tokens, greedy", () => {
    expect(parse()!.options).toEqual({
      url: "http://127.0.0.1:8080/v1", endpoint: "completions", stream: true, includeUsage: true, maxTokens: 64, ignoreEos: false,
      temperature: 0, timeoutMs: 120_000, prompts: ["Once upon a time"], levels: [{ mode: "concurrency", concurrency: 1 }], seed: 0, warmup: 0,
    });
    expect(parse("--help")).toBeUndefined();
  });

  it("levels from lists, concurrency first; the API key from the flag or OPENAI_API_KEY", () => {
    const a = parse("--rate", "0.5,2", "--concurrency", "1, 8,32", "--url", "http://h:1/v1/", "--requests", "10", "--duration", "2.5", "--api-key", "k")!;
    expect(a.options.levels).toEqual([
      { mode: "concurrency", concurrency: 1 }, { mode: "concurrency", concurrency: 8 }, { mode: "concurrency", concurrency: 32 },
      { mode: "rate", rate: 0.5 }, { mode: "rate", rate: 2 },
    ]);
    expect(a.options).toMatchObject({ url: "http://h:1/v1", requests: 10, durationS: 2.5, apiKey: "k" });
    expect(parseBenchServeArgs(benchServeCommand, [], { OPENAI_API_KEY: "env" })!.options.apiKey).toBe("env");
  });

  it.each([
    [["--concurrency", "0"], "--concurrency must be an integer >= 1 and <= 10000, got '0'"],
    [["--concurrency", "1,,2"], "--concurrency must be a comma-separated list, got '1,,2'"],
    [["--rate", "0"], "--rate must be a number > 0 and <= 100000, got '0'"],
    [["--rate=-1"], "--rate must be a number > 0"],
    [["--requests", "1.5"], "--requests must be an integer"],
    [["--seed", "x"], "--seed must be an integer"],
    [["--duration", "0"], "--duration must be a number > 0"],
    [["--endpoint", "embeddings"], "--endpoint must be one of completions, chat, got 'embeddings'"],
    [["--prompt", "a", "--prompt-file", "f"], "give --prompt or --prompt-file, not both"],
    [["--prompt", ""], "--prompt must not be empty"],
    [["--prompt-file", "/nonexistent/prompts.txt"], "--prompt-file: cannot read '/nonexistent/prompts.txt'"],
    [["--no-stream", "--no-usage"], "--no-usage only applies to streaming"],
    [["--url", "ftp://h/v1"], "--url must be http or https, such as http://127.0.0.1:8080/v1, got 'ftp://h/v1'"],
    [["--url", "localhost:8080"], "--url must be http or https"],
    [["--url", "nope"], "--url must be an http(s) URL"],
    [["--bogus"], "Unknown option '--bogus'"],
  ])("%j is a usage error", (argv, message) => {
    let err: unknown;
    try {
      parse(...argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain(message);
    expect((err as UsageError).command).toBe(benchServeCommand);
  });
});
