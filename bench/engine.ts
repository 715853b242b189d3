// engine.ts is the in-process serving benchmark (`npx tsx bench/engine.ts`): the continuous-batching
// Engine (src/serve/engine.ts) on the bundled stories260K, closed loop at several concurrency levels:
// `concurrency` clients each send their next request as soon as the last one ends, 2 x concurrency
// requests in all (64 at concurrency 32, as in the issue), prompt "Once upon a time", 64 output tokens
// each (EOS ignored), streaming. It reports output tokens/s, TTFT and time per output token, and the
// engine's steps. No HTTP: this is the engine's ceiling (kiln bench serve measures the server).
// NOTE: on a shared machine wall-clock rates swing 2-4x with the load; tokens per CPU-second of this
// (single-threaded) process do not, so both are printed.
//
//   npx tsx bench/engine.ts [--backend cpu|webgpu] [--concurrency 1,8,32] [--tokens 64] [--temperature 1]

import { cpus, loadavg } from "node:os";
import type { BackendName } from "../src/index.js";
import { getBackend } from "../src/index.js";
import { builtinModel, loadModel } from "../src/models/formats/load_model.js";
import { fromLoaded } from "../src/models/language_model.js";
import { loadLlama2cTokenizer } from "../src/models/tokenizers/index.js";
import { Engine } from "../src/serve/engine.js";
import { median } from "./lib/timing.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const backendName = arg("backend", "cpu") as BackendName;
const levels = arg("concurrency", "1,8,32").split(",").map(Number);
const tokens = Number(arg("tokens", "64"));
const temperature = Number(arg("temperature", "1"));
const MODEL = "stories260K";

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

interface Level {
  readonly concurrency: number;
  readonly requests: number;
  readonly outputTokens: number;
  readonly seconds: number;
  readonly tokensPerS: number;
  /** Output tokens per second of this process's CPU time: what a core of its own would give (the engine is one thread). */
  readonly tokensPerCpuS: number;
  readonly ttftP50Ms: number;
  readonly ttftP99Ms: number;
  readonly tpotP50Ms: number;
  readonly steps: number;
  readonly tokensPerStep: number;
}

async function level(engine: Engine, concurrency: number, id: string): Promise<Level> {
  const requests = Math.max(2 * concurrency, 2);
  const core = engine.core(MODEL)!;
  const [steps0, computed0] = [core.numSteps, core.runner.numTokens];
  let next = 0;
  let outputTokens = 0;
  const ttft: number[] = [];
  const tpot: number[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const client = async () => {
    while (next < requests) {
      const n = next++;
      const start = performance.now();
      let first = 0;
      let count = 0;
      const gen = engine.generate({
        reqId: `${id}-${n}`, model: MODEL, prompt: { kind: "text", text: "Once upon a time" },
        sampling: { temperature, seed: n }, maxTokens: tokens, ignoreEos: true,
      });
      for await (const c of gen) {
        if (c.tokenIds.length > 0 && count === 0) first = performance.now();
        count += c.tokenIds.length;
      }
      const end = performance.now();
      outputTokens += count;
      ttft.push(first - start);
      if (count > 1) tpot.push((end - first) / (count - 1));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const steps = core.numSteps - steps0;
  return {
    concurrency, requests, outputTokens, seconds, tokensPerS: outputTokens / seconds, tokensPerCpuS: outputTokens / cpuSeconds,
    ttftP50Ms: median(ttft), ttftP99Ms: percentile(ttft, 99), tpotP50Ms: median(tpot),
    steps, tokensPerStep: (core.runner.numTokens - computed0) / steps,
  };
}

const loaded = loadModel(MODEL);
const tokenizer = loadLlama2cTokenizer(builtinModel(MODEL)!.tokenizer, loaded.config.vocabSize);
const model = fromLoaded(loaded, await getBackend(backendName));
const engine = new Engine([{ id: MODEL, model, tokenizer, stopTokenIds: tokenizer.eosId === undefined ? [] : [tokenizer.eosId] }], { warmup: true });
await engine.ready();
const rows: Level[] = [];
for (const c of levels) {
  await level(engine, c, `warm${c}`); // captures this level's step shapes
  rows.push(await level(engine, c, `run${c}`));
}
await engine.close();

console.log(`engine: ${MODEL} on ${backendName}, prompt "Once upon a time", ${tokens} output tokens per request, temperature ${temperature}, closed loop\n`);
console.log(`machine load average (1 min) at the end: ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores\n`);
console.log("| concurrency | requests | output tokens/s | per CPU-second | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | steps | tokens/step |");
console.log("|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
for (const r of rows) {
  console.log(`| ${r.concurrency} | ${r.requests} | ${r.tokensPerS.toFixed(0)} | ${r.tokensPerCpuS.toFixed(0)} | ${r.ttftP50Ms.toFixed(1)} | ${r.ttftP99Ms.toFixed(1)} | ${r.tpotP50Ms.toFixed(2)} | ${r.steps} | ${r.tokensPerStep.toFixed(1)} |`);
}
