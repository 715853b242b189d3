// loader.ts: the training data loader. Each call to next() hands out the (B, T) inputs and targets of
// one step on this rank, from shards on disk or over HTTP(S) (shard_source.ts), at positions chosen by
// sampler.ts. The next `prefetch` batches are read in the background (a bounded queue of promises),
// and the time next() spent waiting for data is measured. The position (epoch, step of the next batch
// to hand out) is plain data: state() gives it, restore() continues from it with exactly the batches
// an uninterrupted run would have seen; it belongs in a checkpoint.
// It does not shard by anything but (rank, world size), and never touches tensors or devices.

import { openShards, type OpenOptions, type ShardSet } from "./shard_source.js";
import type { SplitName } from "./shard_index.js";
import { stepsPerEpoch, windowCount, windowStarts, type SampleMode, type SamplerConfig } from "./sampler.js";

export interface LoaderOptions {
  /** A shard folder, an index.json, an http(s) URL of either, or shards already opened. */
  readonly source: string | ShardSet;
  readonly split?: SplitName;
  readonly batchSize: number;
  readonly blockSize: number;
  readonly seed?: number;
  readonly rank?: number;
  readonly worldSize?: number;
  /** The epoch to start in (default 0). */
  readonly epoch?: number;
  readonly mode?: SampleMode;
  /** sequential mode: permute windows per epoch (default true). */
  readonly shuffle?: boolean;
  /** Batches read ahead in the background (default 2; 0 reads on demand). */
  readonly prefetch?: number;
  readonly open?: OpenOptions;
}

/** A loader's position and what it depends on, as JSON-safe data for a checkpoint. */
export interface LoaderState {
  readonly version: 1;
  readonly mode: SampleMode;
  readonly split: SplitName;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly batchSize: number;
  readonly blockSize: number;
  readonly shuffle: boolean;
  /** sha256 over the index's shard list: a state restores only onto the same data. */
  readonly data: string;
  /** The next batch to hand out. */
  readonly epoch: number;
  readonly step: number;
}

export interface Batch {
  /** Inputs, (B, T) row-major. */
  readonly x: Int32Array;
  /** Targets: x shifted by one token, (B, T). */
  readonly y: Int32Array;
  readonly epoch: number;
  readonly step: number;
  /** Milliseconds next() waited for this batch's data (0 when prefetch had it ready). */
  readonly waitMs: number;
}

export interface LoaderStats {
  readonly batches: number;
  /** Total and last milliseconds next() spent waiting for data. */
  readonly waitMs: number;
  readonly lastWaitMs: number;
}

interface Position {
  readonly epoch: number;
  readonly step: number;
}

type Tokens = { x: Int32Array; y: Int32Array };

export async function createLoader(o: LoaderOptions): Promise<DataLoader> {
  const shards = typeof o.source === "string" ? await openShards(o.source, o.open) : o.source;
  return new DataLoader(shards, o);
}

export class DataLoader {
  readonly config: SamplerConfig;
  readonly split: SplitName;
  readonly stepsPerEpoch: number;
  private readonly prefetch: number;
  private pos: Position;
  private queue: { pos: Position; tokens: Promise<Tokens> }[] = [];
  private counters = { batches: 0, waitMs: 0, lastWaitMs: 0 };

  constructor(
    readonly shards: ShardSet,
    o: LoaderOptions,
  ) {
    this.split = o.split ?? "train";
    const tokens = shards.index.splits[this.split].tokens;
    const config: SamplerConfig = {
      mode: o.mode ?? "random",
      seed: o.seed ?? 0,
      rank: o.rank ?? 0,
      worldSize: o.worldSize ?? 1,
      batchSize: o.batchSize,
      blockSize: o.blockSize,
      tokens,
      shuffle: o.shuffle ?? true,
    };
    const fail = (msg: string): never => {
      throw new Error(`data loader (${shards.location}, ${this.split}): ${msg}`);
    };
    for (const k of ["batchSize", "blockSize", "worldSize"] as const) if (!Number.isInteger(config[k]) || config[k] < 1) fail(`${k} must be a positive integer, got ${config[k]}`);
    if (!Number.isInteger(config.rank) || config.rank < 0 || config.rank >= config.worldSize) fail(`rank ${config.rank} is not in 0..${config.worldSize - 1}`);
    if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > 0xffffffff) fail(`seed must be an integer in 0..2^32-1, got ${config.seed}`);
    this.prefetch = o.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) fail(`prefetch must be a non-negative integer, got ${this.prefetch}`);
    if (tokens < config.blockSize + 1) fail(`the split has ${tokens} tokens, fewer than one window of blockSize + 1 = ${config.blockSize + 1}`);
    if (config.mode === "sequential" && stepsPerEpoch(config) < 1) {
      fail(`${windowCount(config)} windows of ${config.blockSize} tokens cannot fill one step of batchSize ${config.batchSize} x worldSize ${config.worldSize}`);
    }
    this.config = config;
    this.stepsPerEpoch = stepsPerEpoch(config);
    const epoch = o.epoch ?? 0;
    if (!Number.isInteger(epoch) || epoch < 0) fail(`epoch must be a non-negative integer, got ${epoch}`);
    this.pos = { epoch, step: 0 };
  }

  /** The next batch; the batches after it are being read meanwhile. */
  async next(): Promise<Batch> {
    this.fill();
    const head = this.queue.shift() ?? { pos: this.pos, tokens: this.load(this.pos) };
    this.pos = this.after(head.pos);
    this.fill();
    const t0 = performance.now();
    const { x, y } = await head.tokens;
    const waitMs = performance.now() - t0;
    this.counters = { batches: this.counters.batches + 1, waitMs: this.counters.waitMs + waitMs, lastWaitMs: waitMs };
    return { x, y, epoch: head.pos.epoch, step: head.pos.step, waitMs };
  }

  state(): LoaderState {
    const c = this.config;
    return {
      version: 1,
      mode: c.mode,
      split: this.split,
      seed: c.seed,
      rank: c.rank,
      worldSize: c.worldSize,
      batchSize: c.batchSize,
      blockSize: c.blockSize,
      shuffle: c.shuffle ?? true,
      data: this.shards.fingerprint,
      epoch: this.pos.epoch,
      step: this.pos.step,
    };
  }

  /** Continue from a state(): the same configuration and data are required, and checked. */
  restore(state: LoaderState): void {
    const mine = this.state();
    if (state?.version !== 1) throw new Error(`data loader: cannot restore a state of version ${String(state?.version)} (expected 1)`);
    for (const k of ["mode", "split", "seed", "rank", "worldSize", "batchSize", "blockSize", "shuffle", "data"] as const) {
      if (state[k] !== mine[k]) throw new Error(`data loader: the saved position has ${k} = ${String(state[k])}, this loader ${String(mine[k])}; it cannot continue that run's batches`);
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.step) || state.step < 0 || state.step >= this.stepsPerEpoch) {
      throw new Error(`data loader: the saved position (epoch ${state.epoch}, step ${state.step}) is not valid for ${this.stepsPerEpoch} steps per epoch`);
    }
    this.queue = [];
    this.pos = { epoch: state.epoch, step: state.step };
  }

  stats(): LoaderStats {
    return { ...this.counters };
  }

  /** Waits for reads in flight, then closes the shard files. */
  async close(): Promise<void> {
    const pending = this.queue.map((q) => q.tokens);
    this.queue = [];
    await Promise.allSettled(pending);
    await this.shards.close();
  }

  private after(p: Position): Position {
    return p.step + 1 < this.stepsPerEpoch ? { epoch: p.epoch, step: p.step + 1 } : { epoch: p.epoch + 1, step: 0 };
  }

  private fill(): void {
    let last = this.queue.length > 0 ? this.after(this.queue[this.queue.length - 1]!.pos) : this.pos;
    while (this.queue.length < this.prefetch) {
      const tokens = this.load(last);
      // NOTE: a read that fails before anyone awaits it must not be an unhandled rejection; next() still sees the error.
      tokens.catch(() => undefined);
      this.queue.push({ pos: last, tokens });
      last = this.after(last);
    }
  }

  private async load(p: Position): Promise<Tokens> {
    const { batchSize: B, blockSize: T } = this.config;
    const starts = windowStarts(this.config, p.epoch, p.step);
    const rows = await Promise.all(starts.map((s) => this.shards.readTokens(this.split, s, T + 1)));
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    rows.forEach((row, b) => {
      x.set(row.subarray(0, T), b * T);
      y.set(row.subarray(1, T + 1), b * T);
    });
    return { x, y };
  }
}
