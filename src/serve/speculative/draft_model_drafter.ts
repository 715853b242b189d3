// draft_model_drafter.ts: drafting with a small model of the target's tokenizer. It keeps its own
// paged KV cache (its own blocks, a free list and a block table per sequence): each call first
// catches every sequence up on the tokens its cache lacks (the prompt the first time, then the
// accepted tokens; a rejected draft's K/V is dropped by cutting the sequence back to the longest
// prefix its cache and the real tokens share), then runs k one-token steps for all sequences
// together, drawing each draft token from the draft's distribution (processed like the target's:
// same temperature, top-k/p, penalties), which the verifier needs as q. It owns the draft model's
// forward and KV memory; what is kept is the verifier's call.
//
// A draft whose vocabulary differs from the target's is refused at load, naming both sizes.

import type { Backend, Tensor } from "../../index.js";
import { jit, tensor } from "../../index.js";
import type { CausalTransformer } from "../../models/language_model.js";
import { seedKey, uniformAt } from "../../models/sampling/index.js";
import type { JitFunction } from "../../tensor/jit.js";
import type { KvCaches } from "../kv_memory.js";
import { allocateKvCaches } from "../kv_memory.js";
import { PagedContext } from "../paged_context.js";
import { pow2AtLeast, tokenBucket } from "../runner_batch.js";
import type { Draft, DraftRequest, Drafter } from "./drafter.js";
import { drawFrom } from "./verifier.js";

export interface DraftModelOptions {
  /** Tokens per block of the draft's KV cache. Default 16. */
  readonly blockSize?: number;
  /** Blocks of the draft's KV cache. Default: 64 sequences of the draft's whole context. */
  readonly numBlocks?: number;
  /** Steps with up to this many tokens are captured and replayed. Default 256. */
  readonly maxJitTokens?: number;
  /** For logs and metrics ("draft:<name>"). */
  readonly name?: string;
}

interface SeqState {
  /** Tokens whose K/V the draft cache holds, at positions 0.. */
  fed: number[];
  blockIds: number[];
}

const DRAFT_STREAM = 0x3c6ef372;

/** The draft model for `target`, or an error naming both vocabulary sizes. */
export function checkDraftVocab(draft: CausalTransformer, target: CausalTransformer): void {
  const d = draft.config.vocabSize, t = target.config.vocabSize;
  if (d !== t) throw new Error(`speculative decoding: the draft model has a vocabulary of ${d} tokens, the target ${t}: a draft model must use the target's tokenizer`);
}

export class DraftModelDrafter implements Drafter {
  readonly name: string;
  private readonly backend: Backend;
  private readonly blockSize: number;
  private readonly maxJitTokens: number;
  private readonly maxBlocksPerSeq: number;
  private readonly seqs = new Map<string, SeqState>();
  private readonly free: number[];
  private readonly steps = new Map<string, JitFunction<Tensor[]>>();
  /** Draft forwards run (catch-up and draft steps). */
  numForwards = 0;

  private constructor(private readonly model: CausalTransformer, private readonly caches: KvCaches, numBlocks: number, opts: DraftModelOptions) {
    this.name = `draft:${opts.name ?? "model"}`;
    this.backend = model.backend;
    this.blockSize = opts.blockSize ?? 16;
    this.maxJitTokens = opts.maxJitTokens ?? 256;
    this.maxBlocksPerSeq = Math.ceil(model.cacheShape.maxSeq / this.blockSize);
    this.free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }

  /** Allocate the draft's KV cache; refuses a draft whose vocabulary is not the target's. */
  static async create(draft: CausalTransformer, target: CausalTransformer, opts: DraftModelOptions = {}): Promise<DraftModelDrafter> {
    checkDraftVocab(draft, target);
    const blockSize = opts.blockSize ?? 16;
    const numBlocks = opts.numBlocks ?? 64 * Math.ceil(draft.cacheShape.maxSeq / blockSize);
    if (!(Number.isInteger(numBlocks) && numBlocks >= 1)) throw new Error(`draft model: numBlocks must be a positive integer, got ${numBlocks}`);
    const caches = await allocateKvCaches(draft.backend, draft.cacheShape, numBlocks, blockSize, draft.dtype);
    return new DraftModelDrafter(draft, caches, numBlocks, { ...opts, blockSize });
  }

  get numFreeBlocks(): number {
    return this.free.length;
  }

  async propose(reqs: readonly DraftRequest[]): Promise<Map<string, Draft>> {
    const maxSeq = this.model.cacheShape.maxSeq;
    // Sequences that fit the draft's context and its pool, with how many tokens each drafts.
    const live: { r: DraftRequest; s: SeqState; k: number }[] = [];
    for (const r of reqs) {
      const s = this.sync(r);
      const k = Math.min(r.k, maxSeq - r.tokens.length + 1);
      if (k < 1 || !this.reserve(s, r.tokens.length + k - 2)) {
        this.drop(r.reqId);
        continue;
      }
      live.push({ r, s, k });
    }
    const out = new Map<string, Draft>();
    if (live.length === 0) return out;
    const drafts = live.map(() => [] as number[]);
    const probs = live.map(() => [] as Float64Array[]);
    // Step 0 catches each sequence up (its new tokens); steps 1.. feed the last draft token.
    for (let step = 0; ; step++) {
      const active = live.map((_, i) => i).filter((i) => drafts[i]!.length < live[i]!.k);
      if (active.length === 0) break;
      const feeds = active.map((i) => {
        const { r, s } = live[i]!;
        return step === 0 ? r.tokens.slice(s.fed.length) : [drafts[i]![drafts[i]!.length - 1]!];
      });
      const logits = await this.forward(active.map((i) => live[i]!.s), feeds);
      const V = this.model.config.vocabSize;
      active.forEach((i, row) => {
        const { r, s } = live[i]!;
        for (const t of feeds[row]!) s.fed.push(t);
        const rowLogits = logits.subarray(row * V, (row + 1) * V);
        const p = r.sampler.params;
        const penalised = p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
        const history = penalised ? [...r.tokens.slice(r.numPromptTokens), ...drafts[i]!] : undefined;
        const q = r.sampler.distribution(rowLogits, history);
        const j = r.tokens.length - r.numPromptTokens + drafts[i]!.length; // output index of the drafted token
        const id = p.temperature === 0 ? q.indexOf(1) : drawFrom(q, uniformAt((seedKey(p.seed) ^ DRAFT_STREAM) >>> 0, j));
        drafts[i]!.push(id);
        probs[i]!.push(q);
      });
    }
    live.forEach(({ r }, i) => {
      const greedy = r.sampler.params.temperature === 0;
      out.set(r.reqId, { tokens: drafts[i]!, probs: greedy ? null : probs[i]! });
    });
    return out;
  }

  drop(reqId: string): void {
    const s = this.seqs.get(reqId);
    if (s === undefined) return;
    this.seqs.delete(reqId);
    for (let i = s.blockIds.length - 1; i >= 0; i--) this.free.push(s.blockIds[i]!);
  }

  dispose(): void {
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
    for (const t of [...this.caches.k, ...this.caches.v]) t.dispose();
  }

  /** The sequence's state, cut back to the longest prefix its cache shares with the real tokens. */
  private sync(r: DraftRequest): SeqState {
    let s = this.seqs.get(r.reqId);
    if (s === undefined) this.seqs.set(r.reqId, (s = { fed: [], blockIds: [] }));
    let m = 0;
    while (m < s.fed.length && m < r.tokens.length && s.fed[m] === r.tokens[m]) m++;
    // NOTE: the last real token is always fed again (its logits give the first draft token).
    s.fed.length = Math.min(m, r.tokens.length - 1);
    return s;
  }

  /** Blocks for positions up to lastPos; false (nothing taken) when the pool is short. */
  private reserve(s: SeqState, lastPos: number): boolean {
    const need = Math.floor(lastPos / this.blockSize) + 1 - s.blockIds.length;
    if (need <= 0) return true;
    if (need > this.free.length) return false;
    for (let i = 0; i < need; i++) s.blockIds.push(this.free.pop()!);
    return true;
  }

  /** One forward of `feeds[i]` appended to sequence i; the logits of each sequence's last fed token. */
  private async forward(seqs: readonly SeqState[], feeds: readonly number[][]): Promise<Float32Array> {
    const { blockSize, maxBlocksPerSeq: M } = this;
    const n = feeds.reduce((a, f) => a + f.length, 0);
    const T = tokenBucket(n, this.maxJitTokens);
    const S = pow2AtLeast(seqs.length);
    const ids = new Int32Array(T).fill(-1), positions = new Int32Array(T).fill(-1), slots = new Int32Array(T).fill(-1);
    const tokenSeq = new Int32Array(T), blockTables = new Int32Array(S * M), sampleRows = new Int32Array(S).fill(-1);
    let t = 0;
    seqs.forEach((s, i) => {
      blockTables.set(s.blockIds, i * M);
      feeds[i]!.forEach((id, o) => {
        const p = s.fed.length + o;
        ids[t] = id;
        positions[t] = p;
        slots[t] = s.blockIds[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
        tokenSeq[t++] = i;
      });
      sampleRows[i] = t - 1;
    });
    this.numForwards++;
    const i32 = (data: Int32Array, shape: readonly number[]) => tensor(data, { backend: this.backend, dtype: "i32", shape });
    const inputs = [i32(ids, [T]), i32(positions, [T]), i32(slots, [T]), i32(tokenSeq, [T]), i32(blockTables, [S, M]), i32(sampleRows, [S])];
    const run = (...x: Tensor[]) => {
      const ctx = new PagedContext(this.model.cacheShape, this.caches, { positions: x[1]!, slots: x[2]!, tokenSeq: x[3]!, blockTables: x[4]! }, blockSize);
      return this.model.logitsAt(x[0]!, ctx, x[5]!);
    };
    if (T > this.maxJitTokens) {
      const logits = run(...inputs);
      const data = await logits.data();
      logits.dispose();
      return Float32Array.from(data);
    }
    const key = `${T}x${S}`;
    let step = this.steps.get(key);
    if (!step) this.steps.set(key, (step = jit((...x: Tensor[]) => run(...x))));
    const [logits] = (await step(...inputs)) as [Tensor];
    return Float32Array.from(await logits.data());
  }
}
