// batches.ts: what the trainer asks of its data (BatchSource: the (B, T) inputs and next-token targets
// of a step's micro-batch), and the simplest source: random windows of one in-memory token array, as
// nanoGPT's get_batch draws them. A window's offset is a hash of (seed, step, micro-batch, row), so
// the batches of a step depend on nothing else: a resumed run draws the same ones without saving any
// RNG state. Sharded, prefetching loaders (train/data/) implement the same interface.

import { mix32 } from "../tensor/random.js";

export interface Batch {
  /** (B * T) token ids, row-major. */
  readonly inputs: Int32Array;
  /** (B * T): inputs shifted by one. */
  readonly targets: Int32Array;
}

export interface BatchSource {
  readonly batchSize: number;
  readonly blockSize: number;
  batch(step: number, micro: number): Batch;
}

export class RandomWindows implements BatchSource {
  constructor(private readonly tokens: ArrayLike<number>, readonly batchSize: number, readonly blockSize: number, private readonly seed = 0) {
    if (!(Number.isInteger(batchSize) && batchSize > 0 && Number.isInteger(blockSize) && blockSize > 0)) {
      throw new Error(`RandomWindows: batchSize and blockSize must be positive integers, got ${batchSize} and ${blockSize}`);
    }
    if (tokens.length < blockSize + 1) throw new Error(`RandomWindows: ${tokens.length} tokens are too few for windows of ${blockSize} + 1`);
  }

  batch(step: number, micro: number): Batch {
    const [b, t] = [this.batchSize, this.blockSize];
    const inputs = new Int32Array(b * t);
    const targets = new Int32Array(b * t);
    const starts = this.tokens.length - t; // offsets 0..starts-1 leave room for the target of the last input
    for (let r = 0; r < b; r++) {
      const h = mix32(mix32(mix32(mix32(this.seed >>> 0) ^ step) ^ micro) ^ r);
      const at = h % starts;
      for (let i = 0; i < t; i++) {
        inputs[r * t + i] = this.tokens[at + i]!;
        targets[r * t + i] = this.tokens[at + i + 1]!;
      }
    }
    return { inputs, targets };
  }
}
