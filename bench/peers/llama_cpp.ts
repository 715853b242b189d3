// llama_cpp.ts: the llama.cpp peer's generation adapter for the side-by-side benchmarks: one GGUF file
// on node-llama-cpp's prebuilt CPU build, told exactly N threads, fed token ids (no tokenizer in the
// loop, so both engines see the same prompt), greedy. It owns opening and closing the peer and the
// two timed operations; loading the module is llama_cpp_location.ts, the comparison side_by_side.ts.
//
// NOTE: node-llama-cpp runs each evaluation on a libuv thread and returns to JS per token, so decode
// pays a per-token JS round trip that llama.cpp's own tools (llama-bench) do not: on tiny models
// (stories260K) it understates llama.cpp; at 85.7M parameters the matmuls dominate.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaContextHandle, LlamaInstance, LlamaModelHandle, LlamaSequenceHandle, NodeLlamaCpp } from "./llama_cpp_location.js";
import { peerDir } from "./llama_cpp_location.js";

export interface PeerInfo {
  readonly name: "llama.cpp";
  /** e.g. "node-llama-cpp 3.22.1 (its prebuilt llama.cpp CPU build, release tag v0.5.0)" */
  readonly version: string;
  /** llama.cpp's system_info line: the SIMD it was built with and uses. */
  readonly systemInfo: string;
}

/** One model on the peer, ready to run prompts. */
export interface PeerGenerator {
  /** Evaluates `ids` as one batch from an empty context and returns the greedy next token. */
  prefill(ids: readonly number[]): Promise<number>;
  /** Continues after prefill: feeds `first`, then each greedy token, `n` forward passes in all; returns the n tokens. */
  decode(first: number, n: number): Promise<number[]>;
  dispose(): Promise<void>;
}

/** The llama.cpp runtime, CPU only, never building from source (works offline), at most `threads` threads. */
export async function openLlamaCpp(lib: NodeLlamaCpp, threads: number): Promise<{ llama: LlamaInstance; info: PeerInfo }> {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`llama.cpp peer: threads must be an integer >= 1, got ${threads}`);
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: "error", maxThreads: threads });
  let pkg = "?";
  try {
    pkg = (JSON.parse(readFileSync(join(peerDir(), "node_modules", "node-llama-cpp", "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // NOTE: only the label suffers; the peer itself loaded.
  }
  const rel = llama.llamaCppRelease;
  return { llama, info: { name: "llama.cpp", version: `node-llama-cpp ${pkg} (its prebuilt llama.cpp CPU build, release tag ${rel.release})`, systemInfo: llama.systemInfo.trim() } };
}

/**
 * A context of `contextSize` tokens on `modelPath` with one sequence, told `threads` threads as both the
 * ideal and the minimum (node-llama-cpp may otherwise lend fewer), and a batch that holds the whole prompt.
 */
export async function openPeerGenerator(llama: LlamaInstance, modelPath: string, opts: { threads: number; contextSize: number }): Promise<PeerGenerator> {
  let model: LlamaModelHandle | undefined;
  let ctx: LlamaContextHandle | undefined;
  try {
    model = await llama.loadModel({ modelPath });
    ctx = await model.createContext({ contextSize: opts.contextSize, batchSize: opts.contextSize, threads: { ideal: opts.threads, min: opts.threads } });
  } catch (err) {
    await ctx?.dispose();
    await model?.dispose();
    throw new Error(`llama.cpp peer: cannot open ${modelPath}: ${(err as Error).message}`);
  }
  const seq: LlamaSequenceHandle = ctx.getSequence();
  const m = model;
  const c = ctx;
  return {
    async prefill(ids) {
      await seq.clearHistory();
      const input = ids.map((id, i) => (i === ids.length - 1 ? ([id, { generateNext: { token: true, options: { temperature: 0 } } }] as [number, object]) : id));
      const out = await seq.controlledEvaluate(input as Parameters<LlamaSequenceHandle["controlledEvaluate"]>[0]);
      const next = out[ids.length - 1]?.next.token;
      if (typeof next !== "number") throw new Error(`llama.cpp peer: prefill of ${ids.length} tokens returned no next token`);
      return next;
    },
    async decode(first, n) {
      const toks: number[] = [];
      if (n <= 0) return toks;
      // NOTE: evaluate() feeds each token it yields back in; leaving the loop stops it after n passes.
      for await (const t of seq.evaluate([first], { temperature: 0 })) {
        toks.push(t);
        if (toks.length >= n) break;
      }
      if (toks.length < n) throw new Error(`llama.cpp peer: decode stopped after ${toks.length} of ${n} tokens`);
      return toks;
    },
    async dispose() {
      seq.dispose();
      await c.dispose();
      await m.dispose();
    },
  };
}
