// train_checkpoint_helpers.ts: shared pieces of the checkpoint tests: a scratch root, a small
// training state with distinct bytes per step, and file systems that misbehave on purpose (a disk
// that fills up after a byte budget, a disk that holds every write until released).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeCheckpointFs } from "../../src/train/checkpoint/index.js";
import type { CheckpointFs, CheckpointState, CheckpointTensor } from "../../src/train/checkpoint/index.js";

export function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "kiln-ckpt-"));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `n` deterministic bytes (a small LCG) that differ with `seed`. */
export function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const f32 = (name: string, shape: number[], seed: number): CheckpointTensor => ({ name, dtype: "F32", shape, bytes: bytes(shape.reduce((a, b) => a * b, 1) * 4, seed) });

/** A small training state for `step`; `dim` scales the embedding (dim × 64 f32 values). */
export function tinyState(step: number, dim = 16): CheckpointState {
  return {
    step,
    config: { model: "tiny", lr: 1e-3, batch: 12, schedule: { warmup: 100, decay: "cosine" } },
    model: {
      architecture: "llama",
      tensors: [
        f32("tok_embeddings.weight", [64, dim], step * 10 + 1),
        { name: "layers.0.attention.wq.weight", dtype: "BF16", shape: [dim, dim], bytes: bytes(dim * dim * 2, step * 10 + 2) },
        f32("norm.weight", [dim], step * 10 + 3),
      ],
    },
    optimizer: {
      tensors: [f32("exp_avg", [64 * dim + dim], step * 10 + 4), f32("exp_avg_sq", [64 * dim + dim], step * 10 + 5)],
      state: { t: step, lossScale: 65536, betas: [0.9, 0.99] },
    },
    rng: { seed: 1337, offset: step * 4096 },
    loader: { epoch: 0, shard: 2, offset: step * 768 },
  };
}

function errno(code: string, path: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected failure, write '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

/** The real file system, but writes fail with `code` (default ENOSPC) once `budget.bytes` have been written. */
export function fullDiskFs(budget: { bytes: number }, code = "ENOSPC"): CheckpointFs {
  const real = nodeCheckpointFs();
  return {
    ...real,
    async create(path) {
      const file = await real.create(path);
      return {
        ...file,
        async write(b) {
          if (b.length > budget.bytes) {
            // NOTE: like a real full disk: what fits is written, then the write fails.
            await file.write(b.subarray(0, budget.bytes));
            budget.bytes = 0;
            throw errno(code, path);
          }
          budget.bytes -= b.length;
          await file.write(b);
        },
      };
    },
  };
}

/** The real file system, but every write waits for `release()`; `writes` counts the writes started. */
export function gatedFs(): { fs: CheckpointFs; release: () => void; writes: () => number } {
  const real = nodeCheckpointFs();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let started = 0;
  const fs: CheckpointFs = {
    ...real,
    async create(path) {
      const file = await real.create(path);
      return {
        ...file,
        async write(b) {
          started++;
          await gate;
          await file.write(b);
        },
      };
    },
  };
  return { fs, release: open, writes: () => started };
}
