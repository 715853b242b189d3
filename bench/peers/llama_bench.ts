// llama_bench.ts: llama.cpp's own llama-bench as a generation peer: the command line kiln gives it (same
// GGUF, same threads, same prompt length and generated tokens), the parse of its JSON output (`-o json`:
// one object per test, pp<N> with n_gen 0 and tg<N> with n_prompt 0, each with its samples in ns), and
// running it as a child process. The parse and the arguments are pure functions (unit-tested without the
// binary); where the binary is comes from llama_cpp_bin.ts.
//
// NOTE: llama-bench feeds its own random token ids, not kiln's prompt, and times tg<N> from an empty
// context (kiln decodes after its 64-token prompt); at these sizes the weights, not the attention over
// 64 more positions, set the time. It prints no tokens, so greedy agreement is checked by the serving
// benchmark (bench/serve_peer.ts), which compares the two servers' text.

import { spawn } from "node:child_process";

export interface LlamaBenchRun {
  readonly model: string;
  readonly threads: number;
  readonly promptTokens: number;
  readonly decodeTokens: number;
  /** Timed repetitions (llama-bench's -r); it runs one untimed warm-up before them. */
  readonly reps: number;
}

/** llama-bench's arguments for one run of pp<promptTokens> and tg<decodeTokens>, JSON on stdout. */
export function llamaBenchArgs(r: LlamaBenchRun): string[] {
  for (const [k, v, min] of [["threads", r.threads, 1], ["promptTokens", r.promptTokens, 1], ["decodeTokens", r.decodeTokens, 1], ["reps", r.reps, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`llama-bench: ${k} must be an integer >= ${min}, got ${v}`);
  }
  if (r.model === "") throw new Error("llama-bench: model path is empty");
  return ["-m", r.model, "-t", String(r.threads), "-p", String(r.promptTokens), "-n", String(r.decodeTokens), "-r", String(r.reps), "-o", "json"];
}

/** One test of a llama-bench run: pp (n_gen 0) or tg (n_prompt 0). */
export interface LlamaBenchTest {
  readonly nPrompt: number;
  readonly nGen: number;
  readonly nThreads: number;
  readonly samplesNs: readonly number[];
}

export interface LlamaBenchOutput {
  readonly buildCommit: string;
  readonly buildNumber: number;
  readonly cpuInfo: string;
  readonly modelFilename: string;
  readonly tests: readonly LlamaBenchTest[];
}

/** Parses llama-bench's `-o json` stdout; throws naming the row and field that is missing or wrong. */
export function parseLlamaBenchJson(text: string): LlamaBenchOutput {
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch (err) {
    throw new Error(`llama-bench output is not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (!Array.isArray(rows) || rows.length === 0) throw new Error(`llama-bench output must be a non-empty JSON array of tests, got ${JSON.stringify(text.slice(0, 200))}`);
  const field = <T>(row: Record<string, unknown>, i: number, name: string, ok: (v: unknown) => v is T, what: string): T => {
    const v = row[name];
    if (!ok(v)) throw new Error(`llama-bench output: test ${i}: ${name} must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
  const isString = (v: unknown): v is string => typeof v === "string";
  const isSamples = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number" && x > 0 && Number.isFinite(x));
  const tests = rows.map((raw, i): LlamaBenchTest => {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`llama-bench output: test ${i} is not an object`);
    const row = raw as Record<string, unknown>;
    const t = {
      nPrompt: field(row, i, "n_prompt", isCount, "an integer >= 0"),
      nGen: field(row, i, "n_gen", isCount, "an integer >= 0"),
      nThreads: field(row, i, "n_threads", isCount, "an integer >= 0"),
      samplesNs: field(row, i, "samples_ns", isSamples, "a non-empty array of positive numbers"),
    };
    if ((t.nPrompt === 0) === (t.nGen === 0)) throw new Error(`llama-bench output: test ${i}: expected a pp test (n_gen 0) or a tg test (n_prompt 0), got n_prompt ${t.nPrompt}, n_gen ${t.nGen}`);
    return t;
  });
  const first = rows[0] as Record<string, unknown>;
  return {
    buildCommit: field(first, 0, "build_commit", isString, "a string"),
    buildNumber: field(first, 0, "build_number", isCount, "an integer >= 0"),
    cpuInfo: field(first, 0, "cpu_info", isString, "a string"),
    modelFilename: field(first, 0, "model_filename", isString, "a string"),
    tests,
  };
}

/** The samples in ms of the pp<n> ("pp") or tg<n> ("tg") test; throws when the run has no such test. */
export function testMs(out: LlamaBenchOutput, kind: "pp" | "tg", n: number): number[] {
  const t = out.tests.find((x) => (kind === "pp" ? x.nPrompt === n && x.nGen === 0 : x.nGen === n && x.nPrompt === 0));
  if (!t) throw new Error(`llama-bench output has no ${kind}${n} test (it has ${out.tests.map((x) => (x.nGen === 0 ? `pp${x.nPrompt}` : `tg${x.nGen}`)).join(", ")})`);
  return t.samplesNs.map((ns) => ns / 1e6);
}

/** Runs llama-bench and parses its stdout; the child is killed after `timeoutMs`. Errors carry the tail of its stderr. */
export function runLlamaBench(bin: string, args: readonly string[], timeoutMs = 300_000): Promise<LlamaBenchOutput> {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    proc.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    proc.stderr.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-4000)));
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`llama-bench: cannot start ${bin}: ${e.message}`));
    });
    proc.on("close", (code, sig) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`llama-bench ${args.join(" ")} exited with ${code ?? sig}${sig === "SIGKILL" ? ` (killed after ${timeoutMs / 1000} s)` : ""}:\n${err.slice(-1500)}`));
      try {
        resolve(parseLlamaBenchJson(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}
