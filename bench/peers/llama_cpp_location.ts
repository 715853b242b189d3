// llama_cpp_location.ts: where the llama.cpp peer (node-llama-cpp) lives and how a benchmark loads it.
// The peer is never a dependency of kiln: `npm run peer:install` puts it in a cache folder
// (bench/peers/install_llama_cpp.mjs), and benchmarks import it from there by absolute path. When it is
// absent they print NOT_INSTALLED and go on without it. This file owns the folder and the import only;
// what runs on the peer is bench/peers/llama_cpp.ts.

import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** The line every benchmark prints when the peer is absent. */
export const NOT_INSTALLED = "peer: not installed (run npm run peer:install)";

/** The cache folder: $KILN_PEER_DIR, else ~/.cache/kiln-peers/node-llama-cpp (install_llama_cpp.mjs uses the same rule). */
export function peerDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KILN_PEER_DIR || join(homedir(), ".cache", "kiln-peers", "node-llama-cpp");
}

/** node-llama-cpp's entry file in the cache folder, or undefined when it is not installed there. */
export function peerEntry(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const entry = join(peerDir(env), "node_modules", "node-llama-cpp", "dist", "index.js");
  return existsSync(entry) ? entry : undefined;
}

/**
 * The parts of node-llama-cpp's API the benchmarks use, typed here so kiln compiles without the package.
 * NOTE: the package's own types are richer; these are checked against 3.22.1 by the peer test.
 */
export interface NodeLlamaCpp {
  getLlama(opts: { gpu: false; build: "never"; logLevel?: string; maxThreads?: number }): Promise<LlamaInstance>;
}

export interface LlamaInstance {
  readonly llamaCppRelease: { readonly repo: string; readonly release: string };
  readonly systemInfo: string;
  loadModel(opts: { modelPath: string }): Promise<LlamaModelHandle>;
  dispose(): Promise<void>;
}

export interface LlamaModelHandle {
  readonly tokens: { readonly bos: number | null; readonly eos: number | null };
  tokenize(text: string, specialTokens?: boolean): number[];
  detokenize(tokens: readonly number[]): string;
  createContext(opts: { contextSize: number; batchSize: number; sequences?: number; threads: number | { ideal: number; min?: number } }): Promise<LlamaContextHandle>;
  dispose(): Promise<void>;
}

export interface LlamaContextHandle {
  readonly sequencesLeft: number;
  getSequence(): LlamaSequenceHandle;
  dispose(): Promise<void>;
}

export interface LlamaSequenceHandle {
  clearHistory(): Promise<void>;
  evaluate(tokens: number[], opts?: { temperature?: number }): AsyncGenerator<number, void, void | number | number[]>;
  controlledEvaluate(input: (number | [number, { generateNext?: { token?: boolean; options?: { temperature?: number } } }])[]): Promise<({ next: { token?: number | null } } | undefined)[]>;
  dispose(): void;
}

/** The module, or the reason it cannot be used (NOT_INSTALLED, or the import's own error). */
export async function loadNodeLlamaCpp(env: NodeJS.ProcessEnv = process.env): Promise<{ lib: NodeLlamaCpp } | { missing: string }> {
  const entry = peerEntry(env);
  if (!entry) return { missing: NOT_INSTALLED };
  try {
    return { lib: (await import(/* @vite-ignore */ pathToFileURL(entry).href)) as NodeLlamaCpp };
  } catch (err) {
    return { missing: `peer: node-llama-cpp at ${entry} does not load: ${(err as Error).message.split("\n")[0]}` };
  }
}
