// bench_serve_command.ts: `kiln bench serve`, the load generator for any OpenAI-compatible server (and
// `kiln bench`, which routes to it): its flags and their validation, Ctrl-C, and where the report goes
// (markdown on stdout and --md, JSON in --out, progress on stderr). The run itself is src/bench_serve.

import { readFileSync, writeFileSync } from "node:fs";
import type { BenchServeOptions, Endpoint, LoadShape } from "../bench_serve/index.js";
import { DEFAULT_REQUESTS, ENDPOINTS, MAX_REQUESTS, markdownReport, runBenchServe, runServeComparison, serveTable } from "../bench_serve/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";

const DEFAULT_URL = "http://127.0.0.1:8080/v1";
const DEFAULT_PROMPT = "Once upon a time";
const DEFAULT_MAX_TOKENS = 64;
const DEFAULT_TIMEOUT_S = 120;
const MAX_CONCURRENCY = 10_000;

const HELP = `Usage: kiln bench serve [--url URL] [--concurrency N,N,...] [--rate R,R,...] [options]

Load-test an OpenAI-compatible server (kiln serve, vLLM, llama.cpp's server, ...): send requests at
each load level and report, per level, requests/s, output tokens/s, time to first token (TTFT), time
per output token after the first (TPOT) and end-to-end latency (p50 and p99, in ms) and the error
rate. A markdown table goes to stdout; progress to stderr while it runs.

Target:
  --url URL               the API's base URL (default ${DEFAULT_URL}); the only URL contacted
  --endpoint E            completions (default) or chat
  --model NAME            the model to ask for (default: the first one GET <url>/models lists)
  --api-key KEY           sent as 'Authorization: Bearer KEY' (default: $OPENAI_API_KEY, if set)
  --no-stream             ask for whole responses (TTFT and TPOT are then not measured)
  --no-usage              do not ask for stream_options.include_usage; count content chunks as tokens

Requests:
  --prompt TEXT           the prompt of every request (default "${DEFAULT_PROMPT}")
  --prompt-file FILE      one prompt per line (empty lines skipped), used in turn
  --max-tokens N          max_tokens of each request (default ${DEFAULT_MAX_TOKENS})
  --ignore-eos            send ignore_eos: true, so every output is max_tokens long (vLLM, kiln serve)
  --temperature T         default 0 (greedy)
  --timeout S             abort a request after S seconds, counted as an error (default ${DEFAULT_TIMEOUT_S})

Load (levels run in the order given, concurrency levels first):
  --concurrency N,N,...   closed loop: N requests in flight, each sent as soon as one ends
  --rate R,R,...          open loop: Poisson arrivals at R requests/s, whatever is in flight
                          (default, when neither is given: --concurrency 1)
  --requests N            requests per level (default ${DEFAULT_REQUESTS} when --duration is not given)
  --duration S            stop sending after S seconds per level (with --requests: whichever comes first)
  --seed N                seed of the arrival times (default 0): the same seed, the same schedule
  --warmup N              requests sent one at a time before the first level, not reported (default 0)

Side by side (kiln serve at --url beside a peer server, e.g. llama.cpp's; bench/serve_peer.ts starts both):
  --peer-url URL          run every level against URL too, in passes alternating which server goes first,
                          and print one table: output tokens/s and TTFT p99 of both, and their ratios
  --peer-model NAME       the model to ask the peer for (default: the first one it lists)
  --passes N              passes with --peer-url (default 3)

Output:
  --out FILE              the report as JSON: settings, and per level the summary and every request
  --md FILE               the markdown table, also written to FILE
  --quiet                 no progress on stderr (a bar on a terminal, else a line every 5 s)
  -h, --help              show this help

Ctrl-C stops the run and reports what ran; a second Ctrl-C quits at once. Exit status: 0 when the
run completed, even if requests failed (errors are reported by kind: 'http 404', 'network',
'timeout', ...); 1 when no model could be found or a report could not be written; 2 on a usage error.`;

const OPTIONS = {
  url: { type: "string" },
  endpoint: { type: "string" },
  model: { type: "string" },
  "api-key": { type: "string" },
  "no-stream": { type: "boolean" },
  "no-usage": { type: "boolean" },
  prompt: { type: "string" },
  "prompt-file": { type: "string" },
  "max-tokens": { type: "string" },
  "ignore-eos": { type: "boolean" },
  temperature: { type: "string" },
  timeout: { type: "string" },
  concurrency: { type: "string" },
  rate: { type: "string" },
  requests: { type: "string" },
  duration: { type: "string" },
  seed: { type: "string" },
  warmup: { type: "string" },
  "peer-url": { type: "string" },
  "peer-model": { type: "string" },
  passes: { type: "string" },
  out: { type: "string" },
  md: { type: "string" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export interface BenchServeArgs {
  readonly options: BenchServeOptions;
  readonly out?: string;
  readonly md?: string;
  readonly quiet: boolean;
  /** Side by side: the peer's base URL, its model, and the number of passes. */
  readonly peer?: { readonly url: string; readonly model?: string; readonly passes: number };
}

/** Reads flag values as numbers within a range, naming the flag when one is not. */
function numbers(cmd: Command) {
  const fail = (flag: string, want: string, text: string) => new UsageError(`bench serve: ${flag} must be ${want}, got '${text}'`, cmd);
  const one = (flag: string, text: string, integer: boolean, min: number, max: number, minOpen = false): number => {
    const ok = integer ? /^\+?\d+$/.test(text) : /^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text);
    const n = Number(text);
    const want = `${integer ? "an integer" : "a number"} ${minOpen ? `> ${min}` : `>= ${min}`} and <= ${max}`;
    if (!ok || !(minOpen ? n > min : n >= min) || n > max) throw fail(flag, want, text);
    return n;
  };
  const list = (flag: string, text: string, integer: boolean, min: number, max: number, minOpen = false): number[] => {
    const items = text.split(",").map((s) => s.trim());
    if (items.some((s) => s === "")) throw fail(flag, "a comma-separated list", text);
    return items.map((s) => one(flag, s, integer, min, max, minOpen));
  };
  return { one, list };
}

/** The prompts: --prompt, the lines of --prompt-file, or the default. */
function readPrompts(cmd: Command, prompt: string | undefined, file: string | undefined): string[] {
  if (prompt !== undefined && file !== undefined) throw new UsageError("bench serve: give --prompt or --prompt-file, not both", cmd);
  if (file === undefined) {
    if (prompt === "") throw new UsageError("bench serve: --prompt must not be empty", cmd);
    return [prompt ?? DEFAULT_PROMPT];
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`bench serve: --prompt-file: cannot read '${file}': ${(err as Error).message}`, cmd);
  }
  const lines = text.split(/\r\n|\n|\r/).filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new UsageError(`bench serve: --prompt-file: '${file}' has no prompt (no non-empty line)`, cmd);
  return lines;
}

function parseUrl(cmd: Command, text: string, flag = "--url"): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`bench serve: ${flag} must be an http(s) URL such as ${DEFAULT_URL}, got '${text}'`, cmd);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`bench serve: ${flag} must be http or https, such as ${DEFAULT_URL}, got '${text}'`, cmd);
  if (u.search || u.hash) throw new UsageError(`bench serve: ${flag} is a base URL without a query or fragment, got '${text}'`, cmd);
  return text.replace(/\/+$/, "");
}

/** Read and validate every flag; throws UsageError naming the flag. Returns undefined for --help. */
export function parseBenchServeArgs(cmd: Command, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchServeArgs | undefined {
  const { values: v } = parseCommandArgs(cmd, argv, OPTIONS);
  if (v.help) return undefined;
  const { one, list } = numbers(cmd);
  const endpoint = (v.endpoint ?? "completions") as Endpoint;
  if (!ENDPOINTS.includes(endpoint)) throw new UsageError(`bench serve: --endpoint must be one of ${ENDPOINTS.join(", ")}, got '${v.endpoint}'`, cmd);
  if (v.model === "") throw new UsageError("bench serve: --model must not be empty", cmd);
  const stream = !v["no-stream"];
  if (!stream && v["no-usage"]) throw new UsageError("bench serve: --no-usage only applies to streaming (drop it or --no-stream)", cmd);

  const levels: LoadShape[] = [
    ...(v.concurrency === undefined ? [] : list("--concurrency", v.concurrency, true, 1, MAX_CONCURRENCY).map((concurrency) => ({ mode: "concurrency" as const, concurrency }))),
    ...(v.rate === undefined ? [] : list("--rate", v.rate, false, 0, 100_000, true).map((rate) => ({ mode: "rate" as const, rate }))),
  ];
  if (levels.length === 0) levels.push({ mode: "concurrency", concurrency: 1 });

  const apiKey = v["api-key"] ?? (env.OPENAI_API_KEY || undefined);
  const requests = v.requests === undefined ? undefined : one("--requests", v.requests, true, 1, MAX_REQUESTS);
  const durationS = v.duration === undefined ? undefined : one("--duration", v.duration, false, 0, 86_400, true);
  const options: BenchServeOptions = {
    url: parseUrl(cmd, v.url ?? DEFAULT_URL),
    endpoint,
    ...(v.model === undefined ? {} : { model: v.model }),
    ...(apiKey === undefined ? {} : { apiKey }),
    stream,
    includeUsage: !v["no-usage"],
    maxTokens: v["max-tokens"] === undefined ? DEFAULT_MAX_TOKENS : one("--max-tokens", v["max-tokens"], true, 1, 1_000_000),
    ignoreEos: v["ignore-eos"] ?? false,
    temperature: v.temperature === undefined ? 0 : one("--temperature", v.temperature, false, 0, 100),
    timeoutMs: 1000 * (v.timeout === undefined ? DEFAULT_TIMEOUT_S : one("--timeout", v.timeout, false, 0, 86_400, true)),
    prompts: readPrompts(cmd, v.prompt, v["prompt-file"]),
    levels,
    ...(requests === undefined ? {} : { requests }),
    ...(durationS === undefined ? {} : { durationS }),
    seed: v.seed === undefined ? 0 : one("--seed", v.seed, true, 0, 2 ** 32 - 1),
    warmup: v.warmup === undefined ? 0 : one("--warmup", v.warmup, true, 0, 1000),
  };
  if (v["peer-url"] === undefined && (v["peer-model"] !== undefined || v.passes !== undefined)) {
    throw new UsageError(`bench serve: --${v.passes !== undefined ? "passes" : "peer-model"} only applies with --peer-url`, cmd);
  }
  const peer = v["peer-url"] === undefined ? undefined : {
    url: parseUrl(cmd, v["peer-url"], "--peer-url"),
    ...(v["peer-model"] === undefined ? {} : { model: v["peer-model"] }),
    passes: v.passes === undefined ? 3 : one("--passes", v.passes, true, 1, 100),
  };
  return { options, ...(v.out === undefined ? {} : { out: v.out }), ...(v.md === undefined ? {} : { md: v.md }), quiet: v.quiet ?? false, ...(peer ? { peer } : {}) };
}

async function runBenchServeCommand(args: BenchServeArgs): Promise<number> {
  const ctl = new AbortController();
  // NOTE: the first Ctrl-C stops the run and still reports; a later one quits at once. One Ctrl-C
  // arrives twice (from the terminal, and forwarded by bin/kiln.mjs), so repeats within a second are one.
  let stoppedAt: number | undefined;
  const onSigint = () => {
    if (stoppedAt === undefined) {
      stoppedAt = performance.now();
      process.stderr.write("\nkiln bench serve: stopping (Ctrl-C again to quit now)\n");
      ctl.abort();
    } else if (performance.now() - stoppedAt > 1000) {
      process.exit(130);
    }
  };
  process.on("SIGINT", onSigint);
  if (args.peer) {
    try {
      return await runSideBySide(args, args.peer, ctl.signal);
    } finally {
      process.off("SIGINT", onSigint);
    }
  }
  let report;
  try {
    report = await runBenchServe(args.options, { signal: ctl.signal, ...(args.quiet ? {} : { progress: process.stderr }) });
  } finally {
    process.off("SIGINT", onSigint);
  }
  const md = markdownReport(report);
  console.log(md);
  if (args.md !== undefined) writeFileSync(args.md, `${md}\n`);
  if (args.out !== undefined) writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

/** --peer-url: the same levels against both servers, alternating passes; one table of both and their ratios. */
async function runSideBySide(args: BenchServeArgs, peer: NonNullable<BenchServeArgs["peer"]>, signal: AbortSignal): Promise<number> {
  const rows = await runServeComparison(args.options, peer.url, peer.passes, {
    signal,
    ...(args.quiet ? {} : { progress: process.stderr }),
    onLevel: (p, who, l) => {
      if (!args.quiet) process.stderr.write(`pass ${p + 1} ${who} ${l.label}: ${l.outputTokensPerS.toFixed(0)} output tok/s, TTFT p99 ${(l.ttftMs.p99 ?? Number.NaN).toFixed(0)} ms\n`);
    },
  }, peer.model);
  const md = [`kiln (${args.options.url}) beside the peer (${peer.url}), ${peer.passes} passes alternating which goes first; ratios of the medians over passes`, "", ...serveTable(rows, "peer")].join("\n");
  console.log(md);
  if (args.md !== undefined) writeFileSync(args.md, `${md}\n`);
  if (args.out !== undefined) writeFileSync(args.out, `${JSON.stringify({ tool: "kiln bench serve --peer-url", kiln: args.options.url, peer: peer.url, passes: peer.passes, rows }, null, 2)}\n`);
  return 0;
}

export const benchServeCommand: Command = {
  name: "bench serve",
  summary: "load-test an OpenAI-compatible server: concurrency levels and Poisson rates, latency percentiles",
  help: HELP,
  async run(argv) {
    const args = parseBenchServeArgs(this, argv);
    if (!args) {
      console.log(HELP);
      return 0;
    }
    try {
      return await runBenchServeCommand(args);
    } catch (err) {
      // NOTE: no model found, or a report that cannot be written: the message says which and why.
      const e = err as Error;
      console.error(`kiln bench serve: ${process.env.KILN_DEBUG ? (e.stack ?? e.message) : e.message}`);
      return 1;
    }
  },
};

const BENCH_HELP = `Usage: kiln bench <benchmark> [options]

Benchmarks:
  serve    ${benchServeCommand.summary}

Run 'kiln bench <benchmark> --help' for a benchmark's options.`;

/** `kiln bench`: routes to its benchmarks (serve). */
export const benchCommand: Command = {
  name: "bench",
  summary: "benchmarks: 'kiln bench serve' load-tests an OpenAI-compatible server",
  help: BENCH_HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === "-h" || sub === "--help") {
      console.log(BENCH_HELP);
      return 0;
    }
    if (sub === undefined) throw new UsageError("bench: no benchmark given", this);
    if (sub !== "serve") throw new UsageError(`bench: unknown benchmark '${sub}' (benchmarks: serve)`, this);
    return benchServeCommand.run(rest);
  },
};
