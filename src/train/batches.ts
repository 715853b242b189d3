// batches.ts: what the trainer asks of its data (BatchSource: the (B, T) inputs and next-token targets
// of a step's micro-batch, and the position a checkpoint keeps), and the simplest source: random
// windows of one in-memory token array, as nanoGPT's get_batch draws them. A window's offset is a hash
// of (seed, step, micro-batch, row), so the batches of a step depend on nothing else: its state is the
// seed alone. Prepared shards come through loader_batches.ts (train/data/'s DataLoader).

import { mix32 } from "../tensor/random.js";
import type { Json } from "./checkpoint/index.js";

export interface Batch {
  /** (B * T) token ids, row-major. */
  readonly inputs: Int32Array;
  /** (B * T): inputs shifted by one. */
  readonly targets: Int32Array;
}

export interface BatchSource {
  readonly batchSize: number;
  readonly blockSize: number;
  /** The batches are asked for in order (step 0 micro 0, 0 1, ..., 1 0, ...) from where restore() put the source. */
  batch(step: number, micro: number): Batch | Promise<Batch>;
  /** The position as plain data (for a checkpoint). */
  state(): Json;
  /** Continue from a state(); throws when it belongs to another source (seed, data, shapes). */
  restore(state: Json): void;
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

  state(): Json {
    return { kind: "random-windows", seed: this.seed, tokens: this.tokens.length, batchSize: this.batchSize, blockSize: this.blockSize };
  }

  restore(state: Json): void {
    const mine = this.state() as Record<string, Json>;
    const saved = (state ?? {}) as Record<string, Json>;
    for (const k of Object.keys(mine)) {
      if (saved[k] !== mine[k]) throw new Error(`RandomWindows: the saved batch sampler has ${k} = ${JSON.stringify(saved[k])}, this one ${JSON.stringify(mine[k])}; it cannot continue that run's batches`);
    }
  }
}
