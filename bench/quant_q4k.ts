// quant_q4k.ts: `npx tsx bench/quant_q4k.ts [--reps N]`: the measurements behind docs/quantization.md's
// Q4_K rows, all in one run on one machine:
//  - a real trained model in Q4_K: models/spec-pair/target (kiln-trained on TinyStories, dim 128, hidden
//    344) zero-padded to dim 256 / hidden 512 / 8 heads, so every matrix row is whole 256-weight
//    super-blocks. The padding changes no logit (padded heads, features and hidden units are zero; norm
//    gains are scaled by 1/sqrt(2) and eps halved, because RMS over 256 features counts the 128 zeros),
//    which the f32 rows check: the padded model's perplexity equals the original's.
//    Each of f32 / Q8_0 / Q4_0 / Q4_K: perplexity on the tail of data/tinystories-sample (held-out-ish;
//    the model trained on the first 90% of the same text) computed in place, file tensor bytes, and
//    resident bytes (the memory accountant) kept quantized; kiln vs llama.cpp greedy tokens on each file.
//  - decode tokens/s of f32 vs Q4_0 vs Q4_K (kiln cpu, in place) on a 14M-parameter random Llama (dim 512),
//    formats alternating within each repeat; medians and ratios to f32.
// Results: bench/results/quant-q4k-<machine>-<parts>.json/.md (--types a,b and --no-speed pick the parts). Not part of npm test (minutes of cpu).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Backend } from "../src/index.js";
import { getBackend } from "../src/index.js";
import { memoryAccountant, trackMemory } from "../src/core/memory.js";
import { fromLoaded, loadModel, openModel, perplexity, writeGguf } from "../src/models/index.js";
import { memoryTensor } from "../src/models/formats/file_tensor.js";
import { GGML_TYPES } from "../src/models/formats/ggml_types.js";
import type { GgmlTypeName } from "../src/models/formats/ggml_types.js";
import type { LlamaConfig, LoadedModel, TensorEntry } from "../src/models/types.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";
import { openLlamaCpp, openPeerGenerator } from "./peers/llama_cpp.js";
import { loadNodeLlamaCpp } from "./peers/llama_cpp_location.js";
import { kilnEngine, peerEngine, peerThreads, promptIds } from "./peers/llama_cpp_generate.js";
import { randomLlamaGguf } from "./peers/peer_models.js";
import { leadingAgreement } from "./peers/side_by_side.js";

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf("--reps") + 1] ?? 3) || 3;
const ALL_TYPES = ["f32", "q8_0", "q4_0", "q4_k"] as const;
// --types a,b (default all; "none" for the speed part only) and --no-speed: the parts can run as separate processes.
const typesArg = args.includes("--types") ? args[args.indexOf("--types") + 1]!.split(",") : [...ALL_TYPES];
const TYPES = ALL_TYPES.filter((t) => typesArg.includes(t));
const withSpeed = !args.includes("--no-speed");
const part = `${TYPES.length ? TYPES.join("-") : "none"}${withSpeed ? "-speed" : ""}`;
const tmp = mkdtempSync(join(tmpdir(), "kiln-quant-q4k-"));
const root = new URL("../", import.meta.url);

/** `loaded` with dim, heads and hidden zero-padded (see the file comment); same logits. */
function padded(loaded: LoadedModel, dim: number, hidden: number): LoadedModel {
  const c = loaded.config as LlamaConfig;
  if (c.nKvHeads !== c.nHeads) throw new Error("padded: needs nKvHeads = nHeads");
  const heads = dim / c.headDim;
  const pad = (name: string, e: TensorEntry, rows: number, cols: number, scale = 1): TensorEntry => {
    const h = e.read();
    if (h.dtype !== "f32") throw new Error(`padded: ${name} is ${h.dtype}`);
    const src = h.data as Float32Array;
    const [r0, c0] = e.shape.length === 1 ? [1, e.shape[0]!] : [e.shape[0]!, e.shape[1]!];
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < r0; r++) for (let k = 0; k < c0; k++) out[r * cols + k] = src[r * c0 + k]! * scale;
    return memoryTensor(e.shape.length === 1 ? [cols] : [rows, cols], out);
  };
  const tensors = new Map<string, TensorEntry>();
  for (const [name, e] of loaded.tensors) {
    const [rows, cols] = [e.shape[0]!, e.shape[1] ?? 0];
    if (name.endsWith("_norm.weight")) tensors.set(name, pad(name, e, 1, dim, Math.SQRT1_2));
    else if (name === "token_embd.weight" || name === "output.weight") tensors.set(name, pad(name, e, rows, dim));
    else if (/attn_(q|k|v)\.weight$/.test(name)) tensors.set(name, pad(name, e, dim, dim));
    else if (name.endsWith("attn_output.weight")) tensors.set(name, pad(name, e, dim, dim));
    else if (/ffn_(gate|up)\.weight$/.test(name)) tensors.set(name, pad(name, e, hidden, dim));
    else if (name.endsWith("ffn_down.weight")) tensors.set(name, pad(name, e, dim, hidden));
    else throw new Error(`padded: no rule for ${name} (${rows} x ${cols})`);
  }
  const config: LlamaConfig = { ...c, dim, hiddenDim: hidden, nHeads: heads, nKvHeads: heads, normEps: c.normEps / 2 };
  return { ...loaded, config, tensors, source: `${loaded.source} (padded to dim ${dim}, hidden ${hidden})` };
}

function fileTensorBytes(loaded: LoadedModel): number {
  let total = 0;
  for (const e of loaded.tensors.values()) {
    const t = GGML_TYPES[e.stored as GgmlTypeName];
    total += (e.shape.reduce((a, b) => a * b, 1) / t.blockElems) * t.blockBytes;
  }
  return total;
}

interface ModelRow { type: string; fileTensorBytes: number; residentBytes: number; perplexity: number; scored: number; peerAgree?: number; peerTokens?: number }

async function main(): Promise<void> {
  const threads = peerThreads();
  process.env.KILN_CPU_THREADS = String(threads);
  const cpu = await getBackend("cpu");
  const machine = machineInfo();
  const src = join(fileURLToPath(root), "models/spec-pair/target/model.gguf");
  const opened = openModel(src);
  const text = readFileSync(join(fileURLToPath(root), "data/tinystories-sample/tiny_stories.txt"), "utf8").slice(-20_000);
  const tokens = opened.tokenizer.encode(text, { addBos: false });
  const ctx = 128;
  const ppl = async (loaded: LoadedModel) => {
    const lm = fromLoaded(loaded, cpu, { contextLength: ctx });
    const r = await perplexity(lm.model, tokens, ctx, opened.tokenizer.bosId);
    lm.dispose();
    return r;
  };
  // NOTE: the unpadded model's perplexity (the padding check) runs with the f32 row only.
  const original = TYPES.includes("f32") ? await ppl(opened.loaded) : { perplexity: NaN, scoredTokens: NaN };
  console.log(`original (dim 128) f32: perplexity ${original.perplexity.toFixed(4)} over ${original.scoredTokens} tokens`);
  const pad = padded(opened.loaded, 256, 512);
  const prompt = opened.tokenizer.encode("Once upon a time, there was a little", { addBos: true });
  const found = await loadNodeLlamaCpp();
  const peer = "missing" in found ? undefined : await openLlamaCpp(found.lib, threads);
  const rows: ModelRow[] = [];
  try {
    for (const type of TYPES) {
      const path = join(tmp, `target-pad-${type}.gguf`);
      writeGguf(path, pad, { types: type });
      const loaded = loadModel(path);
      const backend = trackMemory(cpu);
      const lm = fromLoaded(loaded, backend, { contextLength: 8 });
      const residentBytes = memoryAccountant(backend)!.snapshot().liveTotal;
      lm.dispose();
      const r = await ppl(loaded);
      const row: ModelRow = { type, fileTensorBytes: fileTensorBytes(loaded), residentBytes, perplexity: r.perplexity, scored: r.scoredTokens };
      if (peer) {
        const kiln = kilnEngine(path, cpu);
        const g = await openPeerGenerator(peer.llama, path, { threads, contextSize: 128 });
        try {
          const k = (await kiln.run(prompt, 48)).ids, p = (await peerEngine(g)(prompt, 48)).ids;
          row.peerAgree = leadingAgreement(k, p);
          row.peerTokens = 48;
          if (type === "q4_k") console.log(`q4_k greedy, kiln: ${JSON.stringify(opened.tokenizer.decode(k))}\nq4_k greedy, llama.cpp: ${JSON.stringify(opened.tokenizer.decode(p))}`);
        } finally {
          kiln.dispose();
          await g.dispose();
        }
      }
      rows.push(row);
      console.log(`${type}: ppl ${r.perplexity.toFixed(4)}, file tensors ${row.fileTensorBytes} B, resident ${residentBytes} B (${(residentBytes / row.fileTensorBytes).toFixed(3)}x)` +
        (row.peerAgree !== undefined ? `, kiln = llama.cpp on ${row.peerAgree}/48 greedy tokens` : ""));
    }
  } finally {
    await peer?.llama.dispose();
  }

  // Decode speed: f32 vs Q4_0 vs Q4_K on the 14M random Llama, alternating.
  const speed = withSpeed ? await decodeSpeed(cpu, tmp) : [];
  const speedModel = "llama-13M-random (14.2M)";
  const res = { suite: "quant-q4k", date: new Date().toISOString(), machine, threads, originalPerplexity: original.perplexity, ctx, rows, speed, speedModel, reps, decodeTokens: DECODE_TOKENS, peer: peer?.info.version ?? "not installed" };
  const f32 = rows.find((r) => r.type === "f32")?.perplexity ?? original.perplexity;
  const md = [
    `# Q4_K measured (${res.date.slice(0, 16)}Z, ${machine.cpu}, ${threads} threads, a shared machine: ratios, not speeds)`, "",
    `Trained model: models/spec-pair/target zero-padded to dim 256 / hidden 512 (same logits; unpadded f32 perplexity ${original.perplexity.toFixed(4)}). ` +
    `Perplexity: last 20,000 characters of data/tinystories-sample, chunks of ${ctx}, ${original.scoredTokens} scored tokens, computed in place. llama.cpp: ${res.peer}.`, "",
    "| file | file tensor bytes | resident (kept quantized) | resident / file | perplexity | vs f32 | kiln = llama.cpp greedy |", "|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.type} | ${r.fileTensorBytes} | ${r.residentBytes} | ${(r.residentBytes / r.fileTensorBytes).toFixed(3)} | ${r.perplexity.toFixed(4)} | ${r.type === "f32" ? "—" : `${((r.perplexity / f32 - 1) * 100).toFixed(2)}%`} | ${r.peerAgree === undefined ? "—" : `${r.peerAgree}/${r.peerTokens}`} |`),
    "", `Decode (kiln cpu, ${speedModel}, 16-token prompt, ${DECODE_TOKENS} decode steps, median of ${reps} alternating repeats):`, "",
    "| weights | decode tokens/s | vs f32 |", "|---|---|---|", ...speed.map((s) => `| ${s.type} | ${s.decodeTokensPerS.toFixed(2)} | ${s.vsF32.toFixed(2)} |`), "",
  ].join("\n");
  const out = fileURLToPath(new URL("results/", import.meta.url));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `quant-q4k-${machine.tag}-${part}.json`), JSON.stringify(res, null, 2) + "\n");
  writeFileSync(join(out, `quant-q4k-${machine.tag}-${part}.md`), md);
  console.log(`\n${md}`);
}

const DECODE_TOKENS = 32;

/** Decode tokens/s of f32, Q4_0 and Q4_K files of one random Llama, the formats alternating within each repeat. */
async function decodeSpeed(cpu: Backend, dir: string): Promise<{ type: string; decodeTokensPerS: number; vsF32: number }[]> {
  const mid: LlamaConfig = {
    arch: "llama", dim: 512, hiddenDim: 1536, nLayers: 4, nHeads: 8, nKvHeads: 8, headDim: 64, vocabSize: 512,
    maxSeqLen: 256, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
  };
  const base = randomLlamaGguf(undefined, mid, "llama-13M-random");
  const speedTypes = ["f32", "q4_0", "q4_k"] as const;
  const engines = speedTypes.map((t) => {
    const path = t === "f32" ? base.path : join(dir, `mid-${t}.gguf`);
    if (t !== "f32") writeGguf(path, loadModel(base.path), { types: t });
    return kilnEngine(path, cpu);
  });
  const p16 = promptIds(16, mid.vocabSize);
  const ms: number[][] = speedTypes.map(() => []);
  for (const e of engines) await e.run(p16, 4); // warm-up
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 ? [...speedTypes.keys()].reverse() : [...speedTypes.keys()];
    for (const i of order) ms[i]!.push((await engines[i]!.run(p16, DECODE_TOKENS)).decodeMs);
  }
  engines.forEach((e) => e.dispose());
  const tps = ms.map((xs) => (DECODE_TOKENS * 1000) / median(xs));
  const speed = speedTypes.map((t, i) => ({ type: t, decodeTokensPerS: tps[i]!, vsF32: tps[i]! / tps[0]! }));
  speed.forEach((s) => console.log(`decode ${s.type}: ${s.decodeTokensPerS.toFixed(2)} tokens/s (${s.vsF32.toFixed(2)}x f32)`));
  return speed;
}

try {
  await main();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
