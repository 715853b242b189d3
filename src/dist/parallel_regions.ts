// parallel_regions.ts: the collectives of tensor, sequence and expert parallelism with their gradients, as
// Megatron-LM pairs them. Inside a tensor-parallel region each rank holds a part of the activations (a
// slice of the hidden units); outside it every rank holds the same values and computes the same loss. A
// collective's backward therefore depends on which side of the region its input and output are:
//   copyToParallel      identity forward, all-reduce backward   (Megatron's f: enters a region)
//   reduceFromParallel  all-reduce forward, identity backward   (g: leaves a region, summing partial products)
//   gatherFromParallel  all-gather forward, own slice backward  (leaves a column-split region whole)
//   scatterToParallel   own slice forward, all-gather backward  (enters a column-split region)
//   gatherFromSequence  all-gather forward, reduce-scatter backward (sequence parallel: rows split outside)
//   scatterToSequence   reduce-scatter forward, all-gather backward (partial sums to this rank's rows)
//   allToAllParallel    all-to-all both ways (expert parallel: tokens to their experts and back)
// Each is a customGrad: the value is a graph_collectives.ts node, the gradient another, so both passes are
// ordinary graphs that jit captures.

import { customGrad } from "../autograd/custom_grad.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Communicator } from "./comm.js";
import { allGather, allReduce, allToAll, localSlice, reduceScatter } from "./graph_collectives.js";

const pair = (x: Tensor, comm: Communicator, fwd: (t: Tensor) => Tensor, bwd: (g: Tensor) => Tensor): Tensor =>
  comm.size === 1 ? x : customGrad([x], () => fwd(x), (g) => [bwd(g)]);

export function copyToParallel(x: Tensor, comm: Communicator): Tensor {
  return pair(x, comm, (t) => t, (g) => allReduce(g, comm));
}

export function reduceFromParallel(x: Tensor, comm: Communicator): Tensor {
  return pair(x, comm, (t) => allReduce(t, comm), (g) => g);
}

export function gatherFromParallel(x: Tensor, comm: Communicator, axis = -1): Tensor {
  return pair(x, comm, (t) => allGather(t, comm, axis), (g) => localSlice(g, comm, axis));
}

export function scatterToParallel(x: Tensor, comm: Communicator, axis = -1): Tensor {
  return pair(x, comm, (t) => localSlice(t, comm, axis), (g) => allGather(g, comm, axis));
}

export function gatherFromSequence(x: Tensor, comm: Communicator, axis = 0): Tensor {
  return pair(x, comm, (t) => allGather(t, comm, axis), (g) => reduceScatter(g, comm, axis));
}

export function scatterToSequence(x: Tensor, comm: Communicator, axis = 0): Tensor {
  return pair(x, comm, (t) => reduceScatter(t, comm, axis), (g) => allGather(g, comm, axis));
}

export function allToAllParallel(x: Tensor, comm: Communicator): Tensor {
  return pair(x, comm, (t) => allToAll(t, comm), (g) => allToAll(g, comm));
}
