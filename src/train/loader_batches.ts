// loader_batches.ts: prepared token shards (train/data/'s DataLoader) as the trainer's BatchSource.
// Each batch() hands out the loader's next batch (the loader prefetches the ones after it), so a step
// with k micro-batches takes k consecutive batches; state() and restore() are the loader's own
// position, which a checkpoint keeps. rewind() goes back to where it started (the held-out split is
// read from the same place at every evaluation, so eval losses compare across steps and resumes).

import type { Json } from "./checkpoint/index.js";
import type { DataLoader, LoaderState } from "./data/index.js";
import type { Batch, BatchSource } from "./batches.js";

export class LoaderBatches implements BatchSource {
  private readonly start: LoaderState;

  constructor(readonly loader: DataLoader) {
    this.start = loader.state();
  }

  get batchSize(): number { return this.loader.config.batchSize; }
  get blockSize(): number { return this.loader.config.blockSize; }

  async batch(): Promise<Batch> {
    const { x, y } = await this.loader.next();
    return { inputs: x, targets: y };
  }

  state(): Json {
    return { ...this.loader.state() };
  }

  restore(state: Json): void {
    this.loader.restore(state as unknown as LoaderState);
  }

  rewind(): void {
    this.loader.restore(this.start);
  }

  close(): Promise<void> {
    return this.loader.close();
  }
}
