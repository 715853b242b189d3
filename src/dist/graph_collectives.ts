// graph_collectives.ts: collectives as tensors. A Communicator (or a group of one) is registered once as the
// executor of core/collectives.ts's graph nodes, and each function here puts one node in the lazy graph,
// f32, of the shape the collective gives. Nothing runs until the graph is realized (or a jit replays it);
// then realize.ts hands the operand to the Communicator in schedule order. These raw nodes have no
// gradient: parallel_regions.ts pairs each with its backward (Megatron's f, g and friends).
// NOTE: a group of one rank is the identity, so a layer written for tp = N runs unchanged at tp = 1 and
// puts no node in the graph.

import {
  type CollectiveExecutor,
  type CollectiveOp,
  type CollectiveSpec,
  collectiveShape,
  registerCollectiveGroup,
} from "../core/collectives.js";
import { Node } from "../core/graph.js";
import { Tensor } from "../tensor/tensor.js";
import type { Communicator } from "./comm.js";

const ids = new WeakMap<Communicator, number>();

/** The graph's id of `comm`, registering it as an executor on first use. */
export function graphGroupId(comm: Communicator, name = `group of ${comm.size}`): number {
  let id = ids.get(comm);
  if (id === undefined) {
    id = registerCollectiveGroup(executorOf(comm, name));
    ids.set(comm, id);
  }
  return id;
}

function executorOf(comm: Communicator, name: string): CollectiveExecutor {
  return {
    rank: comm.rank,
    size: comm.size,
    name,
    run(spec: CollectiveSpec, x: Float32Array): Promise<Float32Array> {
      switch (spec.op) {
        case "all_reduce": return comm.allReduce(x, spec.reduce);
        case "all_gather": return comm.allGather(x);
        case "reduce_scatter": return comm.reduceScatter(x);
        case "all_to_all": return comm.allToAll(x);
        case "broadcast": return comm.broadcast(x, spec.root);
      }
    },
  };
}

function node(x: Tensor, comm: Communicator, op: CollectiveOp, extra: Partial<Pick<CollectiveSpec, "reduce" | "root">> = {}): Tensor {
  if (x.dtype !== "f32") throw new Error(`${op}: collectives carry f32 tensors; got ${x.dtype} (cast first)`);
  const spec: CollectiveSpec = { op, reduce: extra.reduce ?? "sum", root: extra.root ?? 0, group: graphGroupId(comm) };
  const shape = collectiveShape(op, x.shape, comm.size);
  return new Tensor(new Node(x.backend, "collective", [x.node], { kind: "collective", spec }, shape, "f32"));
}

/** Element-wise sum (or max) over the group's ranks, on every rank. */
export function allReduce(x: Tensor, comm: Communicator, reduce: "sum" | "max" = "sum"): Tensor {
  return comm.size === 1 ? x : node(x, comm, "all_reduce", { reduce });
}

/** The ranks' tensors stacked along `axis` in rank order (every rank passes the same shape). */
export function allGather(x: Tensor, comm: Communicator, axis = 0): Tensor {
  if (comm.size === 1) return x;
  return alongAxis0(x, axis, (t) => node(t, comm, "all_gather"));
}

/** This rank's 1/size slice along `axis` of the ranks' sum (the axis must divide by the group size). */
export function reduceScatter(x: Tensor, comm: Communicator, axis = 0): Tensor {
  if (comm.size === 1) return x;
  return alongAxis0(x, axis, (t) => node(t, comm, "reduce_scatter"));
}

/** Chunk r of dim 0 (dim 0 / size rows) goes to rank r; the result holds the received chunks in rank order. */
export function allToAll(x: Tensor, comm: Communicator): Tensor {
  return comm.size === 1 ? x : node(x, comm, "all_to_all");
}

/** The root rank's tensor, on every rank. */
export function broadcast(x: Tensor, comm: Communicator, root = 0): Tensor {
  return comm.size === 1 ? x : node(x, comm, "broadcast", { root });
}

/** This rank's 1/size slice of x along `axis` (no communication). */
export function localSlice(x: Tensor, comm: Communicator, axis: number): Tensor {
  const ax = axis < 0 ? axis + x.ndim : axis;
  const d = x.shape[ax]!;
  if (d % comm.size !== 0) throw new Error(`split over ${comm.size} ranks: dim ${ax} of (${x.shape.join(", ")}) does not divide`);
  const k = d / comm.size;
  return x.slice(ax, comm.rank * k, (comm.rank + 1) * k);
}

/** Applies a dim-0 collective along `axis`: moves the axis first, runs it, moves it back. */
function alongAxis0(x: Tensor, axis: number, f: (t: Tensor) => Tensor): Tensor {
  const ax = axis < 0 ? axis + x.ndim : axis;
  if (!(ax >= 0 && ax < x.ndim)) throw new Error(`collective: axis ${axis} is out of range for (${x.shape.join(", ")})`);
  if (ax === 0) return f(x);
  const perm = [ax, ...x.shape.map((_, i) => i).filter((i) => i !== ax)];
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return f(x.permute(perm).contiguous()).permute(inv);
}
