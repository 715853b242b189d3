// zero.ts: ZeRO stages 1 and 2 (Rajbhandari et al.) over the trainer's flat buffers, as a sharding strategy
// the trainer sees generically (train/sharded_step.ts OptimizerSharding; it never learns the world size).
// Rank r owns the part shardRange(n, align, size, r) of every flat buffer: its optimizer keeps state (AdamW's
// m and v) for that part only and updates only that part of the parameters, which are then all-gathered so
// every rank holds the whole model again.
//   stage 1: the ranks' flat gradients are all-reduced (every rank holds the whole reduced gradient for a
//            moment) and each rank keeps its part;
//   stage 2: they are reduce-scattered, so after the reduction a rank only ever holds its part.
// The global gradient norm (for clipping) is the square root of the ranks' chunk sums of squares, summed.
// NOTE: host collectives of plain Float32Arrays, like data_parallel.ts. ZeRO-3 (parameters gathered per layer
// just in time, inside the step's graph) is zero3.ts with train/zero3_trainer.ts.

import { chunkBounds, type Communicator } from "./comm.js";

/** What the trainer's sharding option is (train/sharded_step.ts OptimizerSharding), restated: dist does not import train. */
export interface FlatSharding {
  range(n: number, align: number): readonly [number, number];
  reduceGradient(flatGrad: Float32Array, align: number): Promise<Float32Array>;
  sum(x: number): Promise<number>;
  gatherParameters(part: Float32Array, n: number, align: number): Promise<Float32Array>;
}

export type ZeroStage = 1 | 2;

/**
 * Rank r's part [start, end) of n elements over `size` ranks: chunkBounds over whole units of `align`
 * elements (a part must start where the backend can bind a view: webgpu 64 f32s, cpu 1), the last unit cut at n.
 */
export function shardRange(n: number, align: number, size: number, rank: number): [number, number] {
  if (!(Number.isInteger(n) && n >= 0 && Number.isInteger(align) && align >= 1)) throw new Error(`shardRange: n must be an integer >= 0 and align >= 1, got n ${n}, align ${align}`);
  const [a, b] = chunkBounds(Math.ceil(n / align), size, rank);
  return [Math.min(n, a * align), Math.min(n, b * align)];
}

/** The longest part any rank has: collectives pad every part to it (they need the same length on every rank). */
function longestPart(n: number, align: number, size: number): number {
  let most = 0;
  for (let r = 0; r < size; r++) {
    const [a, b] = shardRange(n, align, size, r);
    most = Math.max(most, b - a);
  }
  return most;
}

/** `flat` (n) rearranged so that rank r's part sits at [r * len, r * len + its length): what chunkBounds then cuts exactly. */
function padParts(flat: Float32Array, align: number, size: number, len: number): Float32Array {
  const out = new Float32Array(size * len);
  for (let r = 0; r < size; r++) {
    const [a, b] = shardRange(flat.length, align, size, r);
    out.set(flat.subarray(a, b), r * len);
  }
  return out;
}

/** ZeRO stage 1 or 2 on `comm`: give it to the Trainer as its `sharding` option (every rank does). */
export function zeroSharding(comm: Communicator, stage: ZeroStage): FlatSharding {
  if (stage !== 1 && stage !== 2) throw new Error(`zeroSharding: stage must be 1 or 2 (ZeRO-3 is zero3Sharding, for the Zero3Trainer), got ${JSON.stringify(stage)}`);
  const { rank, size } = comm;
  const range = (n: number, align: number) => shardRange(n, align, size, rank);
  const mean = (x: Float32Array) => {
    for (let i = 0; i < x.length; i++) x[i] = x[i]! / size;
    return x;
  };
  return {
    range,
    async reduceGradient(flatGrad, align) {
      const [a, b] = range(flatGrad.length, align);
      if (stage === 1) return mean((await comm.allReduce(flatGrad, "sum")).slice(a, b));
      // NOTE: reduceScatter cuts by chunkBounds of its input; padding every part to the longest makes that
      // cut land on shardRange's parts whatever the alignment (equal parts: the padding is empty).
      const len = longestPart(flatGrad.length, align, size);
      const mine = await comm.reduceScatter(padParts(flatGrad, align, size, len), "sum");
      return mean(mine.slice(0, b - a));
    },
    async sum(x) {
      return (await comm.allReduce(Float32Array.of(x), "sum"))[0]!;
    },
    async gatherParameters(part, n, align) {
      const [a, b] = range(n, align);
      if (part.length !== b - a) throw new Error(`ZeRO-${stage} on rank ${rank}: gatherParameters got ${part.length} values for its part [${a}, ${b}) of ${n}`);
      const len = longestPart(n, align, size);
      const padded = new Float32Array(len);
      padded.set(part);
      const all = await comm.allGather(padded);
      const out = new Float32Array(n);
      for (let r = 0; r < size; r++) {
        const [ra, rb] = shardRange(n, align, size, r);
        out.set(all.subarray(r * len, r * len + rb - ra), ra);
      }
      return out;
    },
  };
}
