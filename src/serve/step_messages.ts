// step_messages.ts: tensor-parallel serving's messages between rank 0 (the engine: scheduler, sampling,
// HTTP) and the worker ranks, which only run model steps on their shards. Before each step rank 0
// broadcasts the flattened batch (runner_batch.ts HostBatch: token ids, positions, slots, block tables,
// sampled rows), plain numbers, as two Float32Arrays (a fixed header, then the body the header sizes); the
// workers run the same batch (ModelRunner.runBatch), so every rank builds the same graph and meets the same
// collectives in the same order. A stop message ends the workers' loop.
// It knows no communicator: a StepChannel is anything with a rooted broadcast (src/dist's Communicator is one).
// NOTE: the integers travel as f32, exact below 2^24 (token ids, slots and block ids are checked).

import type { HostBatch } from "./runner_batch.js";

/** What the messages travel over: rank 0's array, on every rank (others pass an array of the same length). */
export interface StepChannel {
  readonly rank: number;
  broadcast(data: Float32Array, root: number): Promise<Float32Array>;
}

/** What a worker runs a batch on (ModelRunner). */
export interface BatchRunner {
  readonly maxBlocksPerSeq: number;
  readonly numBlocks: number;
  runBatch(b: HostBatch): Promise<Float32Array>;
}

const HEADER = 6; // [op, numTokens, tokenBucket, seqBucket, maxBlocksPerSeq, numBlocks]
const STEP = 1;
const STOP = 2;
const EXACT = 2 ** 24;

const bodyLength = (tokens: number, seqs: number, m: number) => 4 * tokens + seqs * m + seqs;

/** Rank 0: send one batch to the workers (before running it itself). */
export async function sendBatch(ch: StepChannel, b: HostBatch, runner: Pick<BatchRunner, "maxBlocksPerSeq" | "numBlocks">): Promise<void> {
  const m = runner.maxBlocksPerSeq;
  await ch.broadcast(Float32Array.of(STEP, b.numTokens, b.tokenBucket, b.seqBucket, m, runner.numBlocks), 0);
  const body = new Float32Array(bodyLength(b.tokenBucket, b.seqBucket, m));
  let at = 0;
  for (const part of [b.ids, b.positions, b.slots, b.tokenSeq, b.blockTables, b.sampleRows]) {
    for (let i = 0; i < part.length; i++) {
      const v = part[i]!;
      if (!(Math.abs(v) < EXACT)) throw new Error(`tensor-parallel serving: ${v} in a step message is too large to travel exactly as f32`);
    }
    body.set(part, at);
    at += part.length;
  }
  if (at !== body.length) throw new Error(`tensor-parallel serving: a step message of ${at} values where the header says ${body.length}`);
  await ch.broadcast(body, 0);
}

/** Rank 0: tell the workers to stop (after the last step). */
export async function sendStop(ch: StepChannel): Promise<void> {
  await ch.broadcast(Float32Array.of(STOP, 0, 0, 0, 0, 0), 0);
}

/**
 * A worker: run every batch rank 0 sends until it sends stop; resolves with the number of steps run.
 * A runner whose KV cache differs from rank 0's (blocks, block-table width) is an error naming both.
 */
export async function runWorker(ch: StepChannel, runner: BatchRunner): Promise<number> {
  let steps = 0;
  for (;;) {
    const h = await ch.broadcast(new Float32Array(HEADER), 0);
    if (h[0] === STOP) return steps;
    if (h[0] !== STEP) throw new Error(`tensor-parallel serving, rank ${ch.rank}: unknown step message ${h[0]}`);
    const [numTokens, tokenBucket, seqBucket, m, numBlocks] = [h[1]!, h[2]!, h[3]!, h[4]!, h[5]!];
    if (m !== runner.maxBlocksPerSeq || numBlocks !== runner.numBlocks) {
      throw new Error(`tensor-parallel serving, rank ${ch.rank}: rank 0's KV cache has ${numBlocks} blocks and ${m} per sequence, this rank's ${runner.numBlocks} and ${runner.maxBlocksPerSeq} (start every rank with the same flags)`);
    }
    const body = await ch.broadcast(new Float32Array(bodyLength(tokenBucket, seqBucket, m)), 0);
    let at = 0;
    const take = (n: number) => Int32Array.from(body.subarray(at, (at += n)));
    const ids = take(tokenBucket), positions = take(tokenBucket), slots = take(tokenBucket), tokenSeq = take(tokenBucket);
    const blockTables = take(seqBucket * m), sampleRows = take(seqBucket);
    await runner.runBatch({ numTokens, tokenBucket, seqBucket, ids, positions, slots, tokenSeq, blockTables, sampleRows, sampled: [] });
    steps++;
  }
}
