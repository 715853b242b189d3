// formats_helpers.ts: shared pieces of the formats tests: the model files they read (from
// test/helpers/fixtures.ts), a scratch folder, and tiny synthetic models.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryTensor } from "../../src/models/formats/file_tensor.js";
import { expectedShapes } from "../../src/models/formats/expected_shapes.js";
import type { LoadedModel, ModelConfig, TensorEntry } from "../../src/models/types.js";
export { STORIES260K_BIN, TINY_GGUF, VOCAB_GPT2_GGUF as VOCAB_GGUF } from "../helpers/fixtures.js";


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
