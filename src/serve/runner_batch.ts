// runner_batch.ts: the model runner's host-side bookkeeping: each request's state as the runner knows
// it (its tokens, block table, computed count, sampler), kept in step with SchedulerOutput's diffs,
// and the flattening of one step into a ragged batch (token ids, positions, slots, block tables, the
// rows to sample), padded to a bucket size so a captured step can replay it. Plain arrays only; the
// tensors and the forward are model_runner.ts's, what to schedule the scheduler's.

import type { Sampler } from "../models/sampling/index.js";
import type { SchedulerOutput } from "./types.js";

export interface RunnerRequest {
  readonly reqId: string;
  /** Prompt, then output. */
  readonly tokens: number[];
  readonly numPromptTokens: number;
  readonly blockIds: number[];
  /** Tokens whose K/V this runner has written (or the prefix cache had). */
  numComputed: number;
  readonly sampler: Sampler;
  /** Speculative decoding proposes drafts for it (the request did not opt out). */
  readonly speculative: boolean;
}

/** One step flattened: arrays of the bucket sizes, ready to upload. */
export interface HostBatch {
  /** Real tokens (the rest of the bucket is padding). */
  readonly numTokens: number;
  /** Token bucket: the length of ids, positions, slots and tokenSeq. */
  readonly tokenBucket: number;
  /** Sequence bucket: the rows of blockTables and the length of sampleRows. */
  readonly seqBucket: number;
  readonly ids: Int32Array;
  readonly positions: Int32Array;
  readonly slots: Int32Array;
  readonly tokenSeq: Int32Array;
  /** (seqBucket, maxBlocksPerSeq), row-major. */
  readonly blockTables: Int32Array;
  /**
   * The tokens whose logits are sampled, -1 for none: one per sampled request, or (speculative
   * decoding) 1 + k consecutive ones for a request with k draft tokens. Length seqBucket, or the
   * power of two above the rows when drafts make them more.
   */
  readonly sampleRows: Int32Array;
  /** The requests to sample, in sampleRows order. */
  readonly sampled: readonly RunnerRequest[];
  /** Per sampled request, its rows in sampleRows (1 + its draft tokens); absent: 1 each. */
  readonly numRows?: readonly number[];
}

/** Smallest power of two >= n. */
export function pow2AtLeast(n: number): number {
  let b = 1;
  while (b < n) b *= 2;
  return b;
}

/** Above this many tokens, buckets grow by this step instead of doubling. */
export const BUCKET_STEP = 64;

/**
 * The bucket of a step of n tokens: a power of two up to BUCKET_STEP, then a multiple of BUCKET_STEP
 * (so a 160-token prefill pads to 192, not 256). Buckets up to maxJitTokens are captured and replayed;
 * above it a step runs eagerly, in a multiple of maxJitTokens (few kernel shapes to compile).
 */
export function tokenBucket(n: number, maxJitTokens: number): number {
  const b = n <= BUCKET_STEP ? pow2AtLeast(n) : Math.ceil(n / BUCKET_STEP) * BUCKET_STEP;
  return b <= maxJitTokens ? b : Math.ceil(n / maxJitTokens) * maxJitTokens;
}

export class RunnerState {
  private readonly requests = new Map<string, RunnerRequest>();

  constructor(
    readonly blockSize: number,
    readonly maxBlocksPerSeq: number,
    private readonly makeSampler: (samplingParams: unknown, numOutputTokens: number) => Sampler,
  ) {}

  get size(): number {
    return this.requests.size;
  }

  /** Apply a SchedulerOutput's diffs (steps 1-3 of docs/serving.md "What the model runner does"). */
  update(out: SchedulerOutput): void {
    for (const id of out.finishedReqIds) this.requests.delete(id);
    for (const id of out.preemptedReqIds) this.requests.delete(id);
    for (const r of out.scheduledNewReqs) {
      if (this.requests.has(r.reqId)) throw new Error(`model runner: step ${out.step} sends ${r.reqId} as new, but the runner already holds it`);
      this.requests.set(r.reqId, {
        reqId: r.reqId,
        tokens: [...r.promptTokenIds, ...r.outputTokenIds],
        numPromptTokens: r.promptTokenIds.length,
        blockIds: [...r.blockIds],
        numComputed: r.numComputedTokens,
        sampler: this.makeSampler(r.samplingParams, r.outputTokenIds.length),
        speculative: r.speculative ?? true,
      });
    }
    for (const c of out.scheduledCachedReqs) {
      const r = this.get(c.reqId, out.step);
      if (c.numComputedTokens !== r.numComputed) {
        throw new Error(`model runner: step ${out.step} says ${c.reqId} has ${c.numComputedTokens} tokens computed; the runner computed ${r.numComputed}`);
      }
      for (const t of c.newTokenIds) r.tokens.push(t);
      for (const b of c.newBlockIds) r.blockIds.push(b);
    }
  }

  /**
   * Renumber the blocks of the requests in `holders` (those the KV manager holds blocks for) after a KV
   * compaction (mapping: old id -> new id, -1 dropped). NOTE: any other request here already finished or was
   * preempted in the scheduler (the next step's diffs delete it): its table is emptied, so it can never
   * address a block it no longer owns.
   */
  remapBlocks(mapping: Int32Array, holders: ReadonlySet<string>): void {
    for (const r of this.requests.values()) {
      if (!holders.has(r.reqId)) {
        r.blockIds.length = 0;
        continue;
      }
      r.blockIds.forEach((b, i) => {
        const to = mapping[b] ?? -1;
        if (to < 0) throw new Error(`model runner: KV compaction drops block ${b}, which ${r.reqId} holds`);
        r.blockIds[i] = to;
      });
    }
  }

  /** A request's block table as the runner knows it (undefined when it holds no state for it). */
  blockIds(reqId: string): readonly number[] | undefined {
    return this.requests.get(reqId)?.blockIds;
  }

  /** The step's requests in batch order: new ones, then cached ones (never the Records' key order). */
  scheduled(out: SchedulerOutput): RunnerRequest[] {
    return [...out.scheduledNewReqs, ...out.scheduledCachedReqs].map((r) => this.get(r.reqId, out.step));
  }

  /**
   * Flatten a step (after update) into a padded batch, and advance each request's computed count.
   * A request's scheduled draft tokens (out.scheduledSpecTokens) follow its tokens in the batch; its
   * computed count then includes them, and the caller rolls back the rejected ones.
   */
  flatten(out: SchedulerOutput, maxJitTokens: number): HostBatch {
    const reqs = this.scheduled(out);
    const numTokens = out.totalNumScheduledTokens;
    const T = tokenBucket(numTokens, maxJitTokens);
    const S = pow2AtLeast(reqs.length);
    const { blockSize, maxBlocksPerSeq } = this;
    const ids = new Int32Array(T).fill(-1);
    const positions = new Int32Array(T).fill(-1);
    const slots = new Int32Array(T).fill(-1);
    const tokenSeq = new Int32Array(T);
    const blockTables = new Int32Array(S * maxBlocksPerSeq);
    const rows: number[] = [];
    const numRows: number[] = [];
    const sampled: RunnerRequest[] = [];
    let t = 0;
    reqs.forEach((r, s) => {
      const n = out.numScheduledTokens[r.reqId]!;
      const end = r.numComputed + n;
      const drafts = out.scheduledSpecTokens?.[r.reqId] ?? [];
      const len = r.tokens.length + drafts.length;
      if (!(n >= 1 && end <= len && (drafts.length === 0 || end === len))) {
        throw new Error(`model runner: step ${out.step} schedules ${n} tokens of ${r.reqId} from ${r.numComputed}, but it has ${r.tokens.length} tokens and ${drafts.length} draft tokens`);
      }
      if (r.blockIds.length * blockSize < end) {
        throw new Error(`model runner: ${r.reqId} needs ${Math.ceil(end / blockSize)} blocks for ${end} tokens but its table has ${r.blockIds.length}`);
      }
      if (r.blockIds.length > maxBlocksPerSeq) throw new Error(`model runner: ${r.reqId} has ${r.blockIds.length} blocks, over the ${maxBlocksPerSeq} a sequence may have`);
      blockTables.set(r.blockIds, s * maxBlocksPerSeq);
      // NOTE: positions below numComputed are never written: they may be shared prefix-cache blocks.
      for (let p = r.numComputed; p < end; p++, t++) {
        ids[t] = p < r.tokens.length ? r.tokens[p]! : drafts[p - r.tokens.length]!;
        positions[t] = p;
        slots[t] = r.blockIds[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
        tokenSeq[t] = s;
      }
      if (end === len) {
        for (let i = drafts.length; i >= 0; i--) rows.push(t - 1 - i);
        numRows.push(drafts.length + 1);
        sampled.push(r);
      }
      r.numComputed = end;
    });
    if (t !== numTokens) throw new Error(`model runner: step ${out.step} totals ${out.totalNumScheduledTokens} tokens but schedules ${t}`);
    // NOTE: without drafts the rows are at most the sequences: the shape stays (S,), as captured at warmup.
    const sampleRows = new Int32Array(Math.max(S, pow2AtLeast(rows.length))).fill(-1);
    sampleRows.set(rows);
    const spec = rows.length > sampled.length;
    return { numTokens, tokenBucket: T, seqBucket: S, ids, positions, slots, tokenSeq, blockTables, sampleRows, sampled, ...(spec ? { numRows } : {}) };
  }

  private get(reqId: string, step: number): RunnerRequest {
    const r = this.requests.get(reqId);
    if (!r) throw new Error(`model runner: step ${step} schedules ${reqId} as cached, but the runner holds no state for it`);
    return r;
  }
}
