// peer_models.ts: the GGUF files both engines read in the side-by-side benchmarks, written by kiln's own
// GGUF writer (so the comparison also checks that llama.cpp reads what kiln writes): stories260K (the
// bundled llama2.c checkpoint and its tok512 tokenizer) and the 85.7M-parameter Llama of issue 14 with
// seeded random weights. It owns the shapes and where the files go, not the timing.

import { existsSync, mkdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { LlamaConfig } from "../../src/models/types.js";
import { loadModel, openModel, randomLoadedModel, tokenizerToGgufMetadata, writeGguf } from "../../src/models/index.js";
import { peerDir } from "./llama_cpp_location.js";

/**
 * Issue 14's larger model: dim 768, hidden 2048, 12 layers, 12 heads, vocab 512, 1024 positions, an
 * untied output matrix: 12 x (4 * 768^2 + 3 * 768 * 2048) + 2 * 512 * 768 + norms = 85.7M parameters,
 * about 343 MB of f32. Decode at this size streams every weight once per token (memory-bound).
 */
export const LLAMA_85M: LlamaConfig = {
  arch: "llama", dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, headDim: 64, vocabSize: 512,
  maxSeqLen: 1024, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
};

export interface PeerModel {
  readonly name: string;
  readonly path: string;
  readonly params: number;
}

/** Where the benchmark GGUF files are kept: beside the peer's folder ($KILN_PEER_MODELS overrides). */
export function peerModelDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KILN_PEER_MODELS || join(dirname(peerDir(env)), "models");
}

// NOTE: both models use stories260K's tok512 tokenizer: llama.cpp refuses a GGUF without one, and the
// random model's vocabulary (512) is the same size. The benchmark feeds token ids, so the text never matters.
function tok512Metadata() {
  return tokenizerToGgufMetadata(openModel("stories260K").tokenizer);
}

const countParams = (m: ReturnType<typeof loadModel>) => [...m.tensors.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);

/** stories260K as GGUF f32 (rewritten each time: it takes milliseconds). */
export function stories260KGguf(dir: string = peerModelDir()): PeerModel {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "stories260K-f32.gguf");
  const m = loadModel("stories260K");
  writeGguf(path, m, { tokenizerMetadata: tok512Metadata() });
  return { name: "stories260K", path, params: countParams(m) };
}

/**
 * The 85.7M random Llama as GGUF f32, written once (seed 1; the writer renames a finished file into
 * place, so a file that exists is whole). `config` is for tests that want a smaller model of the same kind.
 */
export function randomLlamaGguf(dir: string = peerModelDir(), config: LlamaConfig = LLAMA_85M, name = "llama-85.7M-random"): PeerModel {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-seed1-f32.gguf`);
  // NOTE: a file already written is only opened (its header), not rebuilt: 343 MB of random numbers take a while.
  if (!existsSync(path)) writeGguf(path, randomLoadedModel(config, 1), { tokenizerMetadata: tok512Metadata() });
  return { name, path, params: countParams(loadModel(path)) };
}

/**
 * Further GGUF files to compare on ($KILN_PEER_EXTRA: comma-separated paths, e.g. the 85.7M model written
 * by `kiln quantize` as Q8_0 and Q4_0), named by their file names.
 */
export function extraPeerModels(env: NodeJS.ProcessEnv = process.env): PeerModel[] {
  const list = (env.KILN_PEER_EXTRA ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
  return list.map((path) => {
    if (!existsSync(path)) throw new Error(`KILN_PEER_EXTRA names ${JSON.stringify(path)}, which does not exist`);
    return { name: basename(path).replace(/\.gguf$/, ""), path, params: countParams(loadModel(path)) };
  });
}
