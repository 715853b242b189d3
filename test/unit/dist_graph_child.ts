// dist_graph_child.ts: one rank for dist_graph_collectives.test.ts, a real OS process under torchrun's variables.
// It builds graphs holding collective nodes (src/dist/graph_collectives.ts, parallel_regions.ts) on the cpu
// backend and prints one JSON line: each raw collective's result beside the value computed here by plain JS
// from every rank's known inputs, a jit-captured step with collectives replayed on new inputs, and a
// row- and column-parallel linear's value and gradients beside the single-process (unsplit) ones.
// DIST_GROUPS=1 also runs collectives in two sub-groups ({0, 2}, {1, 3}) of a 4-rank world.

import { getBackend } from "../../src/backends/index.js";
import { gradients } from "../../src/autograd/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { allGather, allReduce, allToAll, broadcast, reduceScatter } from "../../src/dist/graph_collectives.js";
import { copyToParallel, gatherFromParallel, reduceFromParallel, scatterToParallel } from "../../src/dist/parallel_regions.js";
import { matmul } from "../../src/tensor/linalg.js";
import { jit } from "../../src/tensor/jit.js";
import { tensor } from "../../src/tensor/create.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { rankInput } from "./dist_comm_inputs.js";

setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 40 s; exiting`);
  process.exit(124);
}, 40_000).unref();

const comm = await createCommunicatorFromEnv({ timeoutMs: 20_000 });
const { rank, size } = comm;
const cpu = await getBackend("cpu");
const t = (data: Float32Array, shape: number[]) => tensor(data, { backend: cpu, shape });
const vals = async (x: Tensor) => Array.from((await x.data()) as Float32Array);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
/** Element-wise f32 sum of the given ranks' inputs, in rank order. */
const sumOf = (ranks: number[], n: number, salt: number) => {
  const out = new Float32Array(n);
  for (const r of ranks) { const x = rankInput(r, n, salt); for (let i = 0; i < n; i++) out[i] = Math.fround(out[i]! + x[i]!); }
  return out;
};
/** maxDiff relative to the reference's largest magnitude: the split sums round differently in f32. */
const relDiff = (a: ArrayLike<number>, ref: ArrayLike<number>) => maxDiff(a, ref) / Math.max(1e-30, ...Array.from(ref, Math.abs));
const everyone = [...Array(size).keys()];
const out: Record<string, unknown> = { rank, size };

// Raw collectives: dim-0 and last-axis gathers, a reduce-scatter along axis 1, all-to-all, broadcast, max.
{
  const x = t(rankInput(rank, 6 * size, 1), [2, 3 * size]);
  out.allReduce = maxDiff(await vals(allReduce(x.mul(1), comm)), sumOf(everyone, 6 * size, 1));
  const g0 = await vals(allGather(t(rankInput(rank, 6, 2), [2, 3]), comm, 0));
  out.allGather0 = maxDiff(g0, everyone.flatMap((r) => Array.from(rankInput(r, 6, 2))));
  const g1 = await vals(allGather(t(rankInput(rank, 6, 3), [2, 3]), comm, -1));
  const want1: number[] = [];
  for (let row = 0; row < 2; row++) for (const r of everyone) want1.push(...Array.from(rankInput(r, 6, 3).subarray(row * 3, row * 3 + 3)));
  out.allGatherLast = maxDiff(g1, want1);
  const rs = await vals(reduceScatter(t(rankInput(rank, 4 * size, 4), [2, 2 * size]), comm, 1));
  const full = sumOf(everyone, 4 * size, 4);
  const wantRs: number[] = [];
  for (let row = 0; row < 2; row++) wantRs.push(...Array.from(full.subarray(row * 2 * size + rank * 2, row * 2 * size + rank * 2 + 2)));
  out.reduceScatterAxis1 = maxDiff(rs, wantRs);
  const a2a = await vals(allToAll(t(rankInput(rank, 3 * size, 5), [size, 3]), comm));
  out.allToAll = maxDiff(a2a, everyone.flatMap((r) => Array.from(rankInput(r, 3 * size, 5).subarray(rank * 3, rank * 3 + 3))));
  out.broadcast = maxDiff(await vals(broadcast(t(rankInput(rank, 5, 6), [5]), comm, size - 1)), rankInput(size - 1, 5, 6));
  const mx = await vals(allReduce(t(rankInput(rank, 7, 7), [7]), comm, "max"));
  const wantMax = everyone.map((r) => rankInput(r, 7, 7)).reduce((m, a) => m.map((v, i) => Math.max(v, a[i]!)));
  out.max = maxDiff(mx, wantMax);
}

// A jit-captured step holding a collective: the capture call, then two replays with new inputs.
{
  const step = jit((a: Tensor) => allReduce(a.mul(2), comm).add(1));
  const got: number[] = [];
  for (const salt of [10, 11, 12]) {
    const [y] = await step(t(rankInput(rank, 8, salt), [8]));
    // 2 * sum + 1, exactly: doubling commutes with the f32 sums.
    got.push(maxDiff(await vals(y!), Array.from(sumOf(everyone, 8, salt), (v) => Math.fround(2 * v + 1))));
  }
  out.jitReplays = got;
  out.jitLaunchesAfter = step.launches;
}

// Tensor parallel linears against the unsplit computation. Every rank builds the same full x, W1, W2, c.
{
  const [B, D, H] = [3, 4, 2 * size];
  const x = t(rankInput(100, B * D, 20), [B, D]);
  const w1 = t(rankInput(100, H * D, 21), [H, D]); // column-parallel: rows (output units) split
  const w2 = t(rankInput(100, D * H, 22), [D, H]); // row-parallel: columns (input units) split
  const c = t(rankInput(100, B * D, 23), [B, D]);
  // Single process: y = (x W1^T) W2^T, loss = sum(y * c).
  const xs = x.mul(1), w1s = w1.mul(1), w2s = w2.mul(1);
  for (const p of [xs, w1s, w2s]) p.requiresGrad = true;
  const yRef = matmul(matmul(xs, w1s.transpose()), w2s.transpose());
  const [dxRef, dw1Ref, dw2Ref] = gradients([yRef], [xs, w1s, w2s], [c]);
  // Parallel: this rank's rows of W1 and columns of W2.
  const k = H / size;
  const w1l = w1.slice(0, rank * k, (rank + 1) * k).contiguous();
  const w2l = w2.slice(1, rank * k, (rank + 1) * k).contiguous();
  const xp = x.mul(1);
  for (const p of [xp, w1l, w2l]) p.requiresGrad = true;
  const hLocal = matmul(copyToParallel(xp, comm), w1l.transpose());
  const y = reduceFromParallel(matmul(hLocal, w2l.transpose()), comm);
  const [dx, dw1, dw2] = gradients([y], [xp, w1l, w2l], [c]);
  out.tpValue = relDiff(await vals(y), await vals(yRef));
  out.tpGradX = relDiff(await vals(dx!), await vals(dxRef!));
  out.tpGradW1 = relDiff(await vals(dw1!), await vals(dw1Ref!.slice(0, rank * k, (rank + 1) * k)));
  out.tpGradW2 = relDiff(await vals(dw2!), await vals(dw2Ref!.slice(1, rank * k, (rank + 1) * k)));
  // Column-parallel output gathered whole, entered by a scatter: gradients equal the unsplit ones.
  const x2 = x.mul(1);
  x2.requiresGrad = true;
  const hAll = gatherFromParallel(matmul(copyToParallel(x2, comm), w1l.transpose()), comm);
  const z = scatterToParallel(hAll, comm).mul(2);
  const zFull = matmul(xs, w1s.transpose()).mul(2);
  const cH = t(rankInput(100, B * H, 24), [B, H]);
  const [dx2] = gradients([gatherFromParallel(z, comm)], [x2], [cH]);
  const [dx2Ref] = gradients([zFull], [xs], [cH]);
  out.gatherValue = relDiff(await vals(hAll), await vals(matmul(x, w1.transpose())));
  out.gatherGradX = relDiff(await vals(dx2!), await vals(dx2Ref!));
}

// Sub-groups of a 4-rank world: {0, 2} and {1, 3} each sum their own members' arrays, at the same time.
if (process.env.DIST_GROUPS === "1") {
  const members = rank % 2 === 0 ? [0, 2] : [1, 3];
  const g = comm.group(members);
  out.groupRank = g.rank;
  out.groupSum = maxDiff(await vals(allReduce(t(rankInput(rank, 9, 30), [9]), g)), sumOf(members, 9, 30));
  out.groupHost = maxDiff(await g.allGather(rankInput(rank, 2, 31)), members.flatMap((r) => Array.from(rankInput(r, 2, 31))));
  out.worldAfter = maxDiff(await comm.allReduce(rankInput(rank, 3, 32)), sumOf(everyone, 3, 32));
}

console.log(JSON.stringify(out));
await comm.close();
