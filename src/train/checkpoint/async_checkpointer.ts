// async_checkpointer.ts: checkpoints written while training goes on. save() copies the state's bytes
// (a snapshot, so the next step may overwrite its buffers) and starts the write in the background;
// flush() waits for it. At most one write is in flight: a save() while one runs waits for it to finish
// before taking its snapshot, so no checkpoint is ever dropped and at most one snapshot is held.
// After each write it applies the retention policy; a failed write (a full disk) is thrown by the next
// save() or flush(). It also removes partial writes that a killed run left, before its first save.

import type { CheckpointFs } from "./checkpoint_fs.js";
import { nodeCheckpointFs } from "./checkpoint_fs.js";
import type { Warn } from "./checkpoint_resume.js";
import { removePartialWrites } from "./checkpoint_resume.js";
import type { RetentionPolicy } from "./checkpoint_retention.js";
import { checkRetention, pruneCheckpoints } from "./checkpoint_retention.js";
import type { CheckpointState, CheckpointTensor } from "./checkpoint_state.js";
import { checkState } from "./checkpoint_state.js";
import { writeCheckpoint } from "./checkpoint_writer.js";

export interface CheckpointerOptions extends Partial<RetentionPolicy> {
  /** The file system to write through (default: Node's); tests inject faults here. */
  readonly fs?: CheckpointFs;
  readonly warn?: Warn;
}

export interface SaveOptions {
  /**
   * The caller hands the tensors' bytes over and will not change them (they were read back from the
   * device into fresh buffers): no copy is taken. Default false: save() copies them.
   */
  readonly owned?: boolean;
}

const copyTensors = (ts: readonly CheckpointTensor[]): CheckpointTensor[] => ts.map((t) => ({ ...t, shape: [...t.shape], bytes: t.bytes.slice() }));

function snapshot(s: CheckpointState): CheckpointState {
  return {
    step: s.step,
    config: structuredClone(s.config),
    model: { architecture: s.model.architecture, tensors: copyTensors(s.model.tensors) },
    optimizer: { tensors: copyTensors(s.optimizer.tensors), state: structuredClone(s.optimizer.state) },
    rng: structuredClone(s.rng),
    loader: structuredClone(s.loader),
  };
}

export class Checkpointer {
  private readonly fs: CheckpointFs;
  private readonly policy: RetentionPolicy;
  private readonly warn: Warn;
  private cleaned: Promise<number> | undefined;
  private inFlight: Promise<void> | undefined;
  private failure: unknown;
  /** The newest checkpoint folder written by this checkpointer, once durable. */
  lastSaved: string | undefined;

  constructor(
    readonly root: string,
    opts: CheckpointerOptions = {},
  ) {
    this.policy = { keepLast: opts.keepLast ?? 3, keepEvery: opts.keepEvery ?? 0 };
    checkRetention(this.policy);
    this.fs = opts.fs ?? nodeCheckpointFs();
    this.warn = opts.warn ?? console.warn;
  }

  /** True while a write is in flight. */
  get writing(): boolean {
    return this.inFlight !== undefined;
  }

  /**
   * Snapshots `state` and starts writing it. With no write in flight the snapshot is taken before
   * save() returns; otherwise save() first waits for that write, so await it before changing the
   * state's buffers. Rejects with a previous write's failure, or a problem with `state` itself.
   */
  save(state: CheckpointState, opts: SaveOptions = {}): Promise<void> {
    if (this.inFlight === undefined && this.failure === undefined) {
      try {
        this.start(state, opts);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return this.startAfterWrite(state, opts);
  }

  private async startAfterWrite(state: CheckpointState, opts: SaveOptions): Promise<void> {
    // NOTE: a loop, because several save() calls may be waiting on one write: the first to wake starts
    // its write, the others wait for that one.
    while (this.inFlight !== undefined || this.failure !== undefined) await this.settle();
    this.start(state, opts);
  }

  private start(state: CheckpointState, opts: SaveOptions): void {
    checkState(state);
    const snap = opts.owned ? state : snapshot(state);
    this.cleaned ??= removePartialWrites(this.root, this.warn).catch((err: unknown) => {
      this.warn(`checkpoint: could not remove partial writes under ${this.root}: ${(err as Error).message}`);
      return 0;
    });
    // NOTE: the failure is kept (not left as a rejected promise nobody awaits) and thrown by the next save or
    // flush. A finished write clears inFlight itself, so the next save() snapshots before it returns.
    const write: Promise<void> = this.write(snap)
      .catch((err: unknown) => void (this.failure = err))
      .finally(() => {
        if (this.inFlight === write) this.inFlight = undefined;
      });
    this.inFlight = write;
  }

  /** Waits for the write in flight; resolves to the newest durable checkpoint folder (or throws its failure). */
  async flush(): Promise<string | undefined> {
    await this.settle();
    return this.lastSaved;
  }

  private async write(state: CheckpointState): Promise<void> {
    await this.cleaned;
    const dir = await writeCheckpoint(this.root, state, { fs: this.fs });
    this.lastSaved = dir;
    try {
      await pruneCheckpoints(this.fs, this.root, state.step, this.policy);
    } catch (err) {
      // NOTE: the new checkpoint is durable; an old one that could not be deleted costs disk space, not correctness.
      this.warn(`checkpoint: could not delete old checkpoints under ${this.root}: ${(err as Error).message}`);
    }
  }

  private async settle(): Promise<void> {
    await this.inFlight;
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      throw err;
    }
  }
}
