// generate.ts is the generation benchmark's command line (`npm run bench:generate`): prefill and decode
// speed in tokens/s, per backend, for the bundled stories260K and for a larger randomly initialised
// Llama (dim 512, 8 layers, 8 heads, vocab 32000: built in memory, no file), the median of repeated
// runs after a warm-up run (which compiles kernels and captures the jitted decode step). It writes
// bench/results/generate-<backend>-<tag>.json and .md and prints the tables. Sampling is greedy on the
// host (argmax), so the numbers are the model's: forward passes, cache updates and the logits read-back.
//
//   npx tsx bench/generate.ts [--backend cpu|webgpu|cuda|all] [--quick] [--out bench/results] [--tag NAME] [--threads N]
//   (--threads: the cpu backend's threads, as KILN_THREADS; the results record the count used)
//   npx tsx bench/generate.ts --peer llama.cpp   (kiln cpu beside node-llama-cpp: bench/peers/llama_cpp_generate.ts)
//   npx tsx bench/generate.ts --peer llama-bench (kiln cpu beside llama.cpp's own llama-bench: bench/peers/llama_bench_generate.ts)
//
// NOTE: WebGPU without a GPU needs VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json on the
// command line; it is not set here, because on a GPU machine it would hide the real GPU. On a software
// adapter the prompts and token counts shrink (SwiftShader runs the WGSL on the CPU).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend, BackendInfo, BackendName } from "../src/index.js";
import { getBackend, parseThreadCount } from "../src/index.js";
import { loadModel } from "../src/models/formats/load_model.js";
import { fromLoaded } from "../src/models/language_model.js";
import { randomLoadedModel } from "../src/models/random_weights.js";
import type { LlamaConfig, LoadedModel } from "../src/models/types.js";
import { parseBenchArgs } from "./lib/args.js";
import type { MachineInfo } from "./lib/machine.js";
import { machineInfo } from "./lib/machine.js";
import { fmt3 } from "./lib/markdown.js";
import { median } from "./lib/timing.js";
import { runGenerateLlamaBench } from "./peers/llama_bench_generate.js";
import { runGeneratePeer } from "./peers/llama_cpp_generate.js";

/** The --peer choices: node-llama-cpp's prebuilt llama.cpp, or llama.cpp's own llama-bench binary. */
export const GENERATE_PEERS = ["llama.cpp", "llama-bench"] as const;

/** A Llama big enough to show how speed scales: 8 x (4 * 512^2 + 3 * 512 * 1376) + 32000 * 512 ~ 41M parameters. */
export const RANDOM_LLAMA: LlamaConfig = {
  arch: "llama", dim: 512, hiddenDim: 1376, nLayers: 8, nHeads: 8, nKvHeads: 8, headDim: 64, vocabSize: 32000,
  maxSeqLen: 512, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true,
};

interface Workload {
  readonly promptTokens: number;
  readonly decodeTokens: number;
  readonly reps: number;
}

interface ModelCase {
  readonly name: string;
  load(): LoadedModel;
  /** Sizes on a real device (cpu, hardware GPU) and on a software GPU (SwiftShader runs WGSL on the CPU). */
  readonly full: Workload;
  readonly software: Workload;
}

const MODELS: readonly ModelCase[] = [
  { name: "stories260K", load: () => loadModel("stories260K"), full: { promptTokens: 64, decodeTokens: 64, reps: 5 }, software: { promptTokens: 16, decodeTokens: 16, reps: 3 } },
  {
    name: "llama-41M-random", load: () => randomLoadedModel(RANDOM_LLAMA, 1),
    full: { promptTokens: 64, decodeTokens: 32, reps: 5 }, software: { promptTokens: 8, decodeTokens: 4, reps: 2 },
  },
];

/** One model on one backend. Times are per run; rates are tokens / median time. */
export interface GenerateRun {
  readonly model: string;
  readonly params: number;
  readonly config: { readonly dim: number; readonly nLayers: number; readonly nHeads: number; readonly vocabSize: number };
  readonly software: boolean;
  readonly promptTokens: number;
  readonly decodeTokens: number;
  readonly reps: number;
  /** The warm-up run: kernel compilation and the decode step's capture included. */
  readonly firstPrefillMs: number;
  readonly firstDecodeMs: number;
  readonly prefillMs: { readonly median: number; readonly min: number; readonly max: number };
  readonly decodeMs: { readonly median: number; readonly min: number; readonly max: number };
  readonly prefillTokensPerS: number;
  readonly decodeTokensPerS: number;
  /** Every run produced the same greedy tokens. */
  readonly deterministic: boolean;
}

export interface GenerateResults {
  readonly suite: "generate";
  readonly version: 1;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly backend: BackendInfo;
  readonly quick: boolean;
  /** The cpu backend's thread count (KILN_THREADS / --threads; absent in results written before it was recorded). */
  readonly threads?: number;
  readonly runs: readonly GenerateRun[];
}

const argmax = (x: Float32Array): number => {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
};

/** A fixed prompt: BOS, then ids spread over the vocabulary. */
const promptIds = (n: number, vocab: number): number[] => Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % (vocab - 3))));

const span = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

async function benchModel(c: ModelCase, backend: Backend, quick: boolean): Promise<GenerateRun> {
  const software = backend.name !== "cpu" && backend.info.software;
  const w = software ? c.software : c.full;
  const reps = quick ? Math.min(w.reps, 2) : w.reps;
  const loaded = c.load();
  const params = [...loaded.tensors.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const model = fromLoaded(loaded, backend);
  const prompt = promptIds(w.promptTokens, loaded.config.vocabSize);
  const once = async () => {
    model.reset();
    const t0 = performance.now();
    let next = argmax(await model.forwardPrefill(prompt));
    const t1 = performance.now();
    const ids = [next];
    for (let i = 0; i < w.decodeTokens; i++) ids.push((next = argmax(await model.decodeStep(next))));
    return { prefill: t1 - t0, decode: performance.now() - t1, ids: ids.join(",") };
  };
  try {
    const first = await once();
    const runs = [];
    for (let i = 0; i < reps; i++) runs.push(await once());
    const prefillMs = span(runs.map((r) => r.prefill));
    const decodeMs = span(runs.map((r) => r.decode));
    const { dim, nLayers, nHeads, vocabSize } = loaded.config;
    return {
      model: c.name, params, config: { dim, nLayers, nHeads, vocabSize }, software,
      promptTokens: w.promptTokens, decodeTokens: w.decodeTokens, reps,
      firstPrefillMs: first.prefill, firstDecodeMs: first.decode, prefillMs, decodeMs,
      prefillTokensPerS: (w.promptTokens * 1000) / prefillMs.median,
      decodeTokensPerS: (w.decodeTokens * 1000) / decodeMs.median,
      deterministic: runs.every((r) => r.ids === first.ids),
    };
  } finally {
    model.dispose();
  }
}

const paramsText = (n: number): string => (n >= 1e6 ? `${fmt3(n / 1e6)}M` : `${fmt3(n / 1e3)}K`);

/** The table rows of one backend's results (also used for the combined table in docs/models.md). */
export function tableRows(r: GenerateResults): string[] {
  return r.runs.map((x) => {
    const sw = x.software ? " (sw)" : "";
    return `| ${x.model} | ${paramsText(x.params)} | ${r.backend.name}${sw} | ${x.promptTokens} | ${fmt3(x.prefillTokensPerS)} | ` +
      `${x.decodeTokens} | ${fmt3(x.decodeTokensPerS)} | ${fmt3(x.decodeMs.median / x.decodeTokens)} | ${x.reps} | ` +
      `${fmt3(x.firstPrefillMs)} / ${fmt3(x.firstDecodeMs)} |`;
  });
}

export const TABLE_HEADER = [
  "| model | params | backend | prompt tokens | prefill tokens/s | decode tokens | decode tokens/s | ms/token | runs | first run ms (prefill / decode) |",
  "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
];

export function renderMarkdown(r: GenerateResults): string {
  const m = r.machine;
  const out = [
    `### generate: ${r.backend.name}: ${r.backend.device} (${m.tag})`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. Backend: ${r.backend.device}. ` +
      `Run ${r.date.slice(0, 16).replace("T", " ")} UTC${r.quick ? ", quick (few runs: a smoke test, not a measurement)" : ""}. ` +
      "Median of the timed runs after one warm-up run; greedy decoding, f32 weights." + (r.threads ? ` cpu threads: ${r.threads}.` : ""),
    "",
    ...TABLE_HEADER,
    ...tableRows(r),
    "",
  ];
  if (r.runs.some((x) => x.software)) {
    out.push("- (sw): a software GPU (SwiftShader runs the WGSL on the CPU), with smaller prompts and fewer tokens: these rows show that generation runs there, not GPU speed.");
  }
  for (const x of r.runs) if (!x.deterministic) out.push(`- ${x.model}: the runs did not all produce the same greedy tokens`);
  return out.join("\n") + "\n";
}

interface Args {
  readonly backends: readonly BackendName[];
  readonly quick: boolean;
  readonly out: string;
  readonly tag?: string;
}

const USAGE = "usage: tsx bench/generate.ts [--backend cpu|webgpu|cuda|all] [--quick] [--out DIR] [--tag NAME] [--threads N] [--peer llama.cpp|llama-bench]";

/** The shared bench flags, after taking out --threads N (applied as KILN_THREADS before any backend starts). */
function parseCliArgs(argv: readonly string[]): Args & { readonly peer?: string } {
  const rest = [...argv];
  const at = rest.indexOf("--threads");
  if (at >= 0) {
    process.env.KILN_THREADS = String(parseThreadCount(rest[at + 1] ?? "", "--threads"));
    rest.splice(at, 2);
  }
  const a = parseBenchArgs(rest, USAGE, ["peer"]);
  return a.lists.peer!.length ? { ...a, peer: a.lists.peer!.at(-1)! } : a;
}

async function main(args: Args & { readonly peer?: string }): Promise<number> {
  if (args.peer !== undefined && !(GENERATE_PEERS as readonly string[]).includes(args.peer)) {
    throw new Error(`--peer must be one of ${GENERATE_PEERS.join(", ")}, got '${args.peer}'`);
  }
  if (args.peer === "llama-bench") return runGenerateLlamaBench({ quick: args.quick, out: args.out, ...(args.tag === undefined ? {} : { tag: args.tag }) });
  if (args.peer !== undefined) return runGeneratePeer({ peer: args.peer, quick: args.quick, out: args.out, ...(args.tag === undefined ? {} : { tag: args.tag }) });
  const machine = machineInfo(args.tag);
  let ran = 0;
  for (const name of args.backends) {
    let backend: Backend;
    try {
      backend = await getBackend(name);
    } catch (err) {
      console.log(`${name}: skipped: ${(err as Error).message}\n`);
      continue;
    }
    console.log(`${name}: ${backend.info.device}${args.quick ? ", quick" : ""}`);
    const runs: GenerateRun[] = [];
    for (const c of MODELS) {
      const r = await benchModel(c, backend, args.quick);
      console.log(`  ${r.model}: prefill ${fmt3(r.prefillTokensPerS)} tokens/s (${r.promptTokens} tokens), decode ${fmt3(r.decodeTokensPerS)} tokens/s (${r.decodeTokens} tokens), ${r.reps} runs`);
      runs.push(r);
    }
    const threads = name === "cpu" ? Number(backend.info.details.threads) : undefined;
    const results: GenerateResults = { suite: "generate", version: 1, date: new Date().toISOString(), machine, backend: backend.info, quick: args.quick, ...(threads ? { threads } : {}), runs };
    const md = renderMarkdown(results);
    console.log(`\n${md}`);
    mkdirSync(args.out, { recursive: true });
    const base = join(args.out, `generate-${name}-${machine.tag}`);
    writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + "\n");
    writeFileSync(`${base}.md`, md);
    console.log(`wrote ${base}.json and ${base}.md\n`);
    ran++;
  }
  return ran > 0 ? 0 : 1;
}

try {
  const code = await main(parseCliArgs(process.argv.slice(2)));
  // NOTE: exit explicitly: a started GPU device keeps Node's event loop alive.
  process.exit(code);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
