// serve_fake_runner.ts: test helpers for the engine core: a model runner without a model that keeps
// its own per-request state from SchedulerOutput diffs, writes each computed token into a simulated
// KV slot array through the block tables, reads every earlier position back (as attention would)
// and samples a token that is a hash of what it read; an invariant check of scheduler + pool state;
// a driver that steps a scheduler until it is idle; and a harness with a manual clock.

import { expect } from "vitest";
import { hashBlock, rootHash } from "../../src/serve/prefix_cache.js";
import type { RequestParams } from "../../src/serve/request.js";
import { Scheduler, type SchedulerConfig } from "../../src/serve/scheduler.js";
import type { ModelRunnerOutput, RequestOutput, SchedulerOutput } from "../../src/serve/types.js";

export const EOS = 0;

/** The token the fake model emits after `tokens`: a hash of the whole sequence; EOS about once in `eosEvery`. */
export function nextToken(tokens: readonly number[], vocab = 512, eosEvery = 0): number {
  const h = parseInt(hashBlock(rootHash("fake"), tokens, 0, tokens.length).slice(8), 16);
  if (eosEvery > 0 && h % eosEvery === 0) return EOS;
  return 1 + (h % (vocab - 1));
}

/** What a request generates alone: the reference every scheduled run must reproduce. */
export function expectedOutput(prompt: readonly number[], maxTokens: number, maxModelLen: number, eosEvery = 0): number[] {
  const tokens = [...prompt];
  const out: number[] = [];
  while (true) {
    const t = nextToken(tokens, 512, eosEvery);
    tokens.push(t);
    out.push(t);
    if ((eosEvery > 0 && t === EOS) || out.length >= maxTokens || tokens.length >= maxModelLen) return out;
  }
}

interface RunnerState {
  tokens: number[];
  blockIds: number[];
  numComputed: number;
}

export class FakeRunner {
  readonly reqs = new Map<string, RunnerState>();
  private readonly kvToken: Int32Array;
  private readonly kvPos: Int32Array;

  constructor(private readonly sched: Scheduler, private readonly eosEvery = 0) {
    const n = sched.kv.pool.numBlocks * sched.kv.blockSize;
    this.kvToken = new Int32Array(n).fill(-1);
    this.kvPos = new Int32Array(n).fill(-1);
  }

  execute(out: SchedulerOutput): ModelRunnerOutput {
    const bs = this.sched.kv.blockSize;
    for (const id of [...out.finishedReqIds, ...out.preemptedReqIds]) this.reqs.delete(id);
    for (const r of out.scheduledNewReqs) {
      expect(this.reqs.has(r.reqId), `runner already holds ${r.reqId}`).toBe(false);
      this.reqs.set(r.reqId, { tokens: [...r.promptTokenIds, ...r.outputTokenIds], blockIds: [...r.blockIds], numComputed: r.numComputedTokens });
    }
    for (const r of out.scheduledCachedReqs) {
      const st = this.reqs.get(r.reqId);
      expect(st, `runner has no state for cached ${r.reqId}`).toBeDefined();
      st!.tokens.push(...r.newTokenIds);
      st!.blockIds.push(...r.newBlockIds);
      expect(st!.numComputed).toBe(r.numComputedTokens);
    }
    const sampled: Record<string, number[]> = {};
    let total = 0;
    for (const r of [...out.scheduledNewReqs, ...out.scheduledCachedReqs]) {
      const n = out.numScheduledTokens[r.reqId]!;
      total += n;
      const st = this.reqs.get(r.reqId)!;
      const end = st.numComputed + n;
      expect(end).toBeLessThanOrEqual(st.tokens.length);
      expect(st.blockIds.length * bs).toBeGreaterThanOrEqual(end);
      for (let p = st.numComputed; p < end; p++) {
        const block = st.blockIds[Math.floor(p / bs)]!;
        // Writing into a block another request also holds would corrupt it. NOTE: 0 when the request
        // was aborted while this step ran: its blocks are free but not reused before the next schedule().
        const b = this.sched.kv.pool.block(block);
        check(b.refCount <= 1 && b.content === null, () => `${r.reqId} writes position ${p} into block ${block} (refCount ${b.refCount}, cached ${b.content !== null})`);
        this.kvToken[block * bs + (p % bs)] = st.tokens[p]!;
        this.kvPos[block * bs + (p % bs)] = p;
      }
      // "Attention": read every position back through the block table.
      const seen: number[] = [];
      for (let p = 0; p < end; p++) {
        const slot = st.blockIds[Math.floor(p / bs)]! * bs + (p % bs);
        if (this.kvToken[slot] !== st.tokens[p] || this.kvPos[slot] !== p) {
          throw new Error(`fake runner: ${r.reqId} position ${p} reads token ${this.kvToken[slot]}@${this.kvPos[slot]}, expected ${st.tokens[p]}@${p}`);
        }
        seen.push(this.kvToken[slot]!);
      }
      st.numComputed = end;
      if (end === st.tokens.length) sampled[r.reqId] = [nextToken(seen, 512, this.eosEvery)];
    }
    expect(total).toBe(out.totalNumScheduledTokens);
    return { sampledTokenIds: sampled };
  }
}

/** Throw unless cond. NOTE: plain checks, not expect(): these run thousands of times per stress step. */
function check(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(`invariant: ${msg()}`);
}

/** Pool and scheduler invariants: refcounts equal owners, no block owned twice, free queue = unreferenced blocks. */
export function checkInvariants(sched: Scheduler): void {
  const pool = sched.kv.pool;
  const owners = new Array<number>(pool.numBlocks).fill(0);
  const running = new Set(sched.runningRequests().map((r) => r.reqId));
  for (const reqId of sched.kv.reqIds()) {
    check(running.has(reqId), () => `${reqId} holds blocks but is not running`);
    const ids = sched.kv.blockIds(reqId);
    check(new Set(ids).size === ids.length, () => `${reqId} holds a block twice: ${ids}`);
    for (const id of ids) owners[id]!++;
  }
  for (const r of sched.runningRequests()) {
    check(r.status === "running", () => `${r.reqId} is in the running list with status ${r.status}`);
    const capacity = sched.kv.blockIds(r.reqId).length * sched.kv.blockSize;
    check(capacity >= r.numComputedTokens, () => `${r.reqId} computed ${r.numComputedTokens} tokens in ${capacity} slots`);
  }
  for (const r of sched.waitingRequests()) {
    check(r.status === "waiting" || r.status === "preempted", () => `${r.reqId} is waiting with status ${r.status}`);
    check(r.numComputedTokens === 0, () => `${r.reqId} is waiting with ${r.numComputedTokens} computed tokens`);
  }
  const free = new Set(pool.freeQueueIds());
  check(free.size === pool.numFree, () => `free queue has ${free.size} distinct blocks, numFree is ${pool.numFree}`);
  for (let id = 0; id < pool.numBlocks; id++) {
    const b = pool.block(id);
    check(b.refCount === owners[id], () => `block ${id} has refCount ${b.refCount} and ${owners[id]} owners`);
    check(free.has(id) === (b.refCount === 0), () => `block ${id} (refCount ${b.refCount}) ${free.has(id) ? "is" : "is not"} in the free queue`);
  }
}

/** Step until the scheduler is idle (or maxSteps), checking invariants after every step. */
export function runToIdle(sched: Scheduler, runner: FakeRunner, opts: { maxSteps?: number; onStep?: (out: SchedulerOutput, outputs: RequestOutput[]) => void } = {}): RequestOutput[] {
  const all: RequestOutput[] = [];
  for (let step = 0; sched.hasWork; step++) {
    if (step >= (opts.maxSteps ?? 10_000)) throw new Error(`scheduler not idle after ${step} steps`);
    const out = sched.schedule();
    const outputs = sched.updateFromOutput(out, runner.execute(out));
    checkInvariants(sched);
    opts.onStep?.(out, outputs);
    all.push(...outputs);
  }
  return all;
}

/** Concatenate each request's streamed tokens; assert exactly one finished output per request. */
export function collect(outputs: readonly RequestOutput[]): Map<string, { tokens: number[]; final: RequestOutput }> {
  const m = new Map<string, { tokens: number[]; final?: RequestOutput }>();
  for (const o of outputs) {
    const e = m.get(o.reqId) ?? { tokens: [] };
    expect(e.final, `${o.reqId} output after it finished`).toBeUndefined();
    e.tokens.push(...o.newTokenIds);
    if (o.finished) e.final = o;
    m.set(o.reqId, e);
  }
  for (const [id, e] of m) expect(e.final, `${id} never finished`).toBeDefined();
  return m as Map<string, { tokens: number[]; final: RequestOutput }>;
}

/** A scheduler (16-token budget, 8 seats, context 64, 32 blocks of 4) on a manual clock, with a fake runner. */
export function setup(over: Partial<SchedulerConfig> = {}) {
  let t = 0;
  const sched = new Scheduler({ maxNumBatchedTokens: 16, maxNumSeqs: 8, maxModelLen: 64, cache: { numBlocks: 32, blockSize: 4 }, now: () => t, ...over });
  const runner = new FakeRunner(sched);
  const outputs: RequestOutput[] = [];
  return {
    sched,
    runner,
    outputs,
    advance(ms: number) {
      t += ms;
    },
    add(p: Partial<RequestParams> & { reqId: string; promptTokenIds: number[] }) {
      return sched.addRequest({ maxTokens: 8, ...p });
    },
    step(): SchedulerOutput {
      const out = sched.schedule();
      outputs.push(...sched.updateFromOutput(out, runner.execute(out)));
      checkInvariants(sched);
      return out;
    },
    finish() {
      outputs.push(...runToIdle(sched, runner));
      expect(sched.kv.numBlocksFree).toBe(sched.kv.pool.numBlocks);
      return collect(outputs);
    },
  };
}
