// resident_ab.ts: kiln's cpu decode on one GGUF with the current KILN_CPU_RESIDENT setting (resident weights,
// or KILN_CPU_RESIDENT=0: the copy-in path), for alternating A/B runs in separate processes on a loaded machine.
// Prints one JSON line: median decode and prefill tokens/s over the reps.
//   KILN_THREADS=1 KILN_CPU_RESIDENT=0|1 npx tsx bench/resident_ab.ts FILE.gguf [reps]
import { getBackend } from "../src/index.js";
import { kilnEngine, promptIds } from "./peers/llama_cpp_generate.js";
import { loadModel } from "../src/models/index.js";
import { median } from "./lib/timing.js";

const [path, repsText] = process.argv.slice(2);
if (!path) throw new Error("usage: resident_ab.ts FILE.gguf [reps]");
const reps = Number(repsText ?? 3);
const backend = await getBackend("cpu");
const kiln = kilnEngine(path, backend);
const prompt = promptIds(64, loadModel(path).config.vocabSize);
await kiln.run(prompt, 64);
const runs = [];
for (let i = 0; i < reps; i++) runs.push(await kiln.run(prompt, 64));
const decode = 64 / (median(runs.map((r) => r.decodeMs)) / 1000);
const prefill = 64 / (median(runs.map((r) => r.prefillMs)) / 1000);
console.log(JSON.stringify({ file: path, resident: process.env.KILN_CPU_RESIDENT !== "0", threads: process.env.KILN_THREADS, decode, prefill }));
kiln.dispose();
