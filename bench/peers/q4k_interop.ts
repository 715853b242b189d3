// q4k_interop.ts: `npx tsx bench/peers/q4k_interop.ts [--tokens N] [--big]`: does kiln's Q4_K agree with
// llama.cpp's? Two checks, each run only where its peer is present (and saying so when not):
//  1. layout: llama.cpp's own quantize_row_q4_K_ref / dequantize_row_q4_K (its libggml-base, built at
//     ~/.cache/kiln-peers/llama.cpp/build/bin, through the small C filter q4k_ref.c) against kiln's writer
//     (encodeQ4K) and reader (dequantize) on the same inputs: identical blocks, identical decoded values.
//  2. tokens: a Llama GGUF written as Q4_K by kiln's writer is loaded by the real llama.cpp
//     (node-llama-cpp) and by kiln (cpu, computed in place); both continue the same prompt ids greedily.
//     The f32 and Q8_0 files of the same model run too, as the control for how close a random model's
//     logits are (llama.cpp multiplies Q4_K/Q8_0 weights with 8-bit-quantized activations, kiln with f32).
// Results: bench/results/q4k-interop-<machine>.json/.md. Not part of npm test (peers, minutes of cpu).

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getBackend } from "../../src/index.js";
import { loadModel, writeGguf } from "../../src/models/index.js";
import type { LlamaConfig } from "../../src/models/types.js";
import { dequantize } from "../../src/models/formats/dequant.js";
import { encodeQ4K } from "../../src/models/formats/encode_q4k.js";
import { machineInfo } from "../lib/machine.js";
import { openLlamaCpp, openPeerGenerator } from "./llama_cpp.js";
import { loadNodeLlamaCpp } from "./llama_cpp_location.js";
import { kilnEngine, peerEngine, peerThreads, promptIds } from "./llama_cpp_generate.js";
import { LLAMA_85M, randomLlamaGguf } from "./peer_models.js";
import { leadingAgreement } from "./side_by_side.js";

/** A mid-size Llama whose every matrix dimension is a multiple of 256 (all Q4_K): about 13M parameters. */
const MID: LlamaConfig = {
  arch: "llama", dim: 512, hiddenDim: 1536, nLayers: 4, nHeads: 8, nKvHeads: 8, headDim: 64, vocabSize: 512,
  maxSeqLen: 256, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
};

const args = process.argv.slice(2);
const tokens = Number(args[args.indexOf("--tokens") + 1] ?? 32) || 32;
const big = args.includes("--big");
const llamaCppDir = process.env.KILN_LLAMA_CPP_DIR || join(homedir(), ".cache", "kiln-peers", "llama.cpp");
const libDir = join(llamaCppDir, "build", "bin");
const tmp = mkdtempSync(join(tmpdir(), "kiln-q4k-interop-"));

function lcg(seed: number): () => number {
  let x = seed;
  return () => ((x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff);
}

interface LayoutResult { readonly input: string; readonly blocks: number; readonly identicalBlocks: number; readonly decodedEqual: boolean; readonly maxAbsDiffKilnVsLlama: number }

/** Check 1: kiln's blocks vs llama.cpp's, and llama.cpp's decoding of kiln's blocks vs kiln's. */
function layout(): LayoutResult[] | string {
  if (!existsSync(join(libDir, "libggml-base.so"))) return `skipped: no ${join(libDir, "libggml-base.so")}`;
  const exe = join(tmp, "q4k_ref");
  execFileSync("gcc", ["-O2", "-o", exe, fileURLToPath(new URL("q4k_ref.c", import.meta.url)), `-L${libDir}`, "-lggml-base", `-Wl,-rpath,${libDir}`]);
  const r = lcg(9);
  const n = 256 * 64;
  const inputs: [string, Float32Array][] = [
    ["uniform [-1, 1]", Float32Array.from({ length: n }, () => r() * 2 - 1)],
    ["uniform [0.5, 1.5]", Float32Array.from({ length: n }, () => 0.5 + r())],
    ["normal-ish x 0.02, 1% outliers x 10", Float32Array.from({ length: n }, () => ((r() + r() + r() - 1.5) * 0.02) * (r() < 0.01 ? 10 : 1))],
    ["one sub-block of zeros per block", Float32Array.from({ length: n }, (_, i) => (i % 256 < 32 ? 0 : r() - 0.3))],
  ];
  return inputs.map(([name, x]) => {
    writeFileSync(join(tmp, "x.f32"), new Uint8Array(x.buffer));
    execFileSync(exe, ["q", join(tmp, "x.f32"), join(tmp, "ref.q4k"), String(n)]);
    const ref = new Uint8Array(readFileSync(join(tmp, "ref.q4k")));
    const ours = encodeQ4K(x);
    let identical = 0;
    for (let b = 0; b < n / 256; b++) if (ours.subarray(b * 144, (b + 1) * 144).every((v, i) => v === ref[b * 144 + i])) identical++;
    writeFileSync(join(tmp, "ours.q4k"), ours);
    execFileSync(exe, ["d", join(tmp, "ours.q4k"), join(tmp, "ours.f32"), String(n)]);
    const theirs = new Float32Array(new Uint8Array(readFileSync(join(tmp, "ours.f32"))).buffer);
    const mine = dequantize("q4_k", ours, n);
    const eq = theirs.every((v, i) => Object.is(v, mine[i]));
    const refDecoded = dequantize("q4_k", ref, n);
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(refDecoded[i]! - mine[i]!));
    return { input: name, blocks: n / 256, identicalBlocks: identical, decodedEqual: eq, maxAbsDiffKilnVsLlama: maxDiff };
  });
}

interface TokenResult { readonly file: string; readonly kiln: number[]; readonly llamaCpp: number[]; readonly agree: number }

/** Check 2: greedy tokens of kiln and llama.cpp on the same files. */
async function greedyTokens(): Promise<{ peer: string; threads: number; model: string; results: TokenResult[] } | string> {
  const found = await loadNodeLlamaCpp();
  if ("missing" in found) return `skipped: ${found.missing}`;
  const threads = peerThreads();
  process.env.KILN_CPU_THREADS = String(threads);
  const backend = await getBackend("cpu");
  const base = big ? randomLlamaGguf() : randomLlamaGguf(undefined, MID, "llama-13M-random");
  const { llama, info } = await openLlamaCpp(found.lib, threads);
  const results: TokenResult[] = [];
  try {
    const prompt = promptIds(16, loadModel(base.path).config.vocabSize);
    for (const type of ["f32", "q8_0", "q4_k"] as const) {
      const path = type === "f32" ? base.path : join(tmp, `${base.name}-${type}.gguf`);
      if (type !== "f32") writeGguf(path, loadModel(base.path), { types: type });
      const kiln = kilnEngine(path, backend);
      const g = await openPeerGenerator(llama, path, { threads, contextSize: 256 });
      try {
        const k = (await kiln.run(prompt, tokens)).ids;
        const p = (await peerEngine(g)(prompt, tokens)).ids;
        results.push({ file: type, kiln: k, llamaCpp: p, agree: leadingAgreement(k, p) });
        console.log(`${type}: kiln and llama.cpp agree on the first ${leadingAgreement(k, p)} of ${tokens} greedy tokens`);
      } finally {
        kiln.dispose();
        await g.dispose();
      }
    }
  } finally {
    await llama.dispose();
  }
  return { peer: info.version, threads, model: `${base.name} (${(base.params / 1e6).toFixed(1)}M parameters, random weights, tok512)`, results };
}

try {
  const machine = machineInfo();
  const lay = layout();
  console.log(typeof lay === "string" ? `layout: ${lay}` : lay.map((l) => `layout ${l.input}: ${l.identicalBlocks}/${l.blocks} blocks identical to llama.cpp's; llama.cpp decodes kiln's blocks ${l.decodedEqual ? "bit for bit as kiln does" : "DIFFERENTLY"}; max |kiln - llama.cpp| decoded ${l.maxAbsDiffKilnVsLlama}`).join("\n"));
  const tok = await greedyTokens();
  if (typeof tok === "string") console.log(`tokens: ${tok}`);
  const res = { suite: "q4k-interop", date: new Date().toISOString(), machine, layout: lay, tokens: tok, tokensPerRun: tokens };
  const md = [
    `# Q4_K: kiln vs llama.cpp (${res.date.slice(0, 16)}Z, ${machine.cpu ?? machine.tag})`, "",
    "## Layout (llama.cpp's libggml-base quantize_row_q4_K_ref / dequantize_row_q4_K vs kiln)", "",
    ...(typeof lay === "string" ? [lay] : ["| input | blocks | identical blocks | llama.cpp decodes kiln's blocks as kiln does | max abs diff of decoded blocks |", "|---|---|---|---|---|",
      ...lay.map((l) => `| ${l.input} | ${l.blocks} | ${l.identicalBlocks} | ${l.decodedEqual ? "yes, bit for bit" : "no"} | ${l.maxAbsDiffKilnVsLlama} |`)]),
    "", "## Greedy tokens on the same file (kiln cpu in place vs llama.cpp)", "",
    ...(typeof tok === "string" ? [tok] : [`${tok.model}; ${tok.peer}; ${tok.threads} threads; prompt of 16 ids; ${tokens} tokens.`, "",
      "| file | leading tokens equal |", "|---|---|", ...tok.results.map((t) => `| ${t.file} | ${t.agree} / ${tokens} |`)]),
    "",
  ].join("\n");
  const out = fileURLToPath(new URL("../results/", import.meta.url));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `q4k-interop-${machine.tag}.json`), JSON.stringify(res, null, 2) + "\n");
  writeFileSync(join(out, `q4k-interop-${machine.tag}.md`), md);
  console.log(`\n${md}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
