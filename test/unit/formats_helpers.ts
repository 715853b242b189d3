// formats_helpers.ts: shared pieces of the formats tests: the model files they read (../shared ones
// through test/helpers/shared_data.ts, undefined when missing so tests skip cleanly), a scratch
// folder, and tiny synthetic models.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { memoryTensor } from "../../src/models/formats/file_tensor.js";
import { expectedShapes } from "../../src/models/formats/expected_shapes.js";
import type { LoadedModel, ModelConfig, TensorEntry } from "../../src/models/types.js";
import { sharedPath } from "../helpers/shared_data.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const TINY_GGUF = sharedPath("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
export const VOCAB_GGUF = sharedPath("models/ggml-vocab/ggml-vocab-gpt-2.gguf");

/** stories260K.bin: the repo's bundled copy, else the shared one, else undefined. */
export function stories260K(): string | undefined {
  const bundled = join(REPO, "models/stories260K/stories260K.bin");
  return existsSync(bundled) ? bundled : sharedPath("models/stories260K/stories260K.bin");
}

export function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "kiln-formats-"));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic values in [-1, 1) (a small LCG), distinct per tensor. */
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x / 2 ** 31 - 1;
  }
  return out;
}

/** A model held in memory with every tensor the config requires (plus any `extra`). */
export function syntheticModel(config: ModelConfig, extra: Record<string, number[]> = {}): LoadedModel {
  const tensors = new Map<string, TensorEntry>();
  let seed = 1;
  for (const [name, shape] of [...expectedShapes(config), ...Object.entries(extra)]) {
    tensors.set(name, memoryTensor(shape, values(shape.reduce((a, b) => a * b, 1), seed++)));
  }
  return { config, tensors, source: "synthetic", metadata: new Map() };
}

/** Every tensor of `b` equals `a`'s bit for bit (same names, shapes and values). */
export function sameTensors(a: LoadedModel, b: LoadedModel): string[] {
  const problems: string[] = [];
  if ([...a.tensors.keys()].sort().join() !== [...b.tensors.keys()].sort().join()) problems.push("tensor names differ");
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name);
    if (!u) continue;
    if (t.shape.join() !== u.shape.join()) problems.push(`${name}: shape ${t.shape} vs ${u.shape}`);
    const x = t.read().data, y = u.read().data;
    if (x.length !== y.length || x.some((v, i) => !Object.is(v, y[i]))) problems.push(`${name}: values differ`);
  }
  return problems;
}
