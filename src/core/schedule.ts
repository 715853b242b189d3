// schedule.ts cuts a lazy graph into kernels. A node gets its own buffer (is materialized) when it is
// a realization target, a reduction, a routine, or a routine's operand; everything else is inlined
// into the kernels that read it. Two fusions make kernels out of chains:
//   - elementwise chains (and views, and gathers) fuse into the reduction or kernel that reads them;
//   - an elementwise tail fuses into the reduction or matmul it reads (an epilogue), when that
//     producer has no other reader and the tail reads it at its own output index.
// It does not allocate memory or launch anything (realize.ts), nor spell kernels (the renderers).

import type { Expr, KernelSpec } from "./ir.js";
import { v } from "./ir.js";
import type { Node } from "./graph.js";
import { topoSort } from "./graph.js";
import { Index } from "./index_expr.js";
import { Lowering } from "./lower.js";
import { simplify, simplifyKernel } from "./simplify.js";
import type { RoutineName } from "./ops.js";
import { isMovement } from "./ops.js";
import type { MatmulSpec, RoutineSpec } from "./routines.js";
import { ROUTINE_IN_PLACE, routineOperands } from "./routines.js";
import type { CollectiveSpec } from "./collectives.js";

export type ScheduleItem =
  | { readonly kind: "kernel"; readonly spec: KernelSpec; readonly out: Node; readonly inputs: readonly Node[] }
  | {
      readonly kind: "routine";
      readonly name: RoutineName;
      readonly spec: RoutineSpec;
      readonly out: Node;
      readonly inputs: readonly Node[];
    }
  | { readonly kind: "collective"; readonly spec: CollectiveSpec; readonly out: Node; readonly inputs: readonly Node[] };

export function schedule(targets: readonly Node[]): ScheduleItem[] {
  const nodes = topoSort(targets);
  const targetSet = new Set(targets);
  const users = new Map<Node, Node[]>();
  for (const n of nodes) for (const s of n.src) users.set(s, [...(users.get(s) ?? []), n]);

  const materialized = new Set<Node>();
  const routineOperands = new Set<Node>();
  for (const n of nodes) {
    if (n.realized) continue;
    const opaque = n.op === "routine" || n.op === "collective"; // read whole buffers, not expressions
    if (targetSet.has(n) || n.keep || n.op === "reduce" || opaque) materialized.add(n);
    if (opaque) for (const s of n.src.map(contiguousBase)) if (!s.realized) (materialized.add(s), routineOperands.add(s));
  }
  sharedAndCostly(nodes, users, materialized);
  const isMat = (n: Node) => materialized.has(n);
  const fusesInto = fusionTargets(nodes, users, isMat, targetSet, routineOperands);

  // Pass 1: lower every elementwise root, noting which producers they absorb.
  const fusedInto = new Map<Node, Node>(); // producer -> root that absorbed it
  const roots = new Map<Node, Lowering>();
  for (const n of nodes) {
    if (!isMat(n) || n.op === "reduce" || n.op === "routine" || n.op === "collective") continue;
    let low = new Lowering(isMat, (p) => fusesInto.get(p) === n);
    let expr = low.lowerRoot(n, Index.flat(n.shape, v("gid")));
    if (low.fusionBroken) {
      // The producer is also read at another index inside this kernel: keep it a kernel of its own.
      low = new Lowering(isMat, () => false);
      expr = low.lowerRoot(n, Index.flat(n.shape, v("gid")));
    }
    roots.set(n, low);
    exprs.set(low, expr);
    if (low.fused) fusedInto.set(low.fused, n);
  }

  // Pass 2: emit items in dependency order.
  const items: ScheduleItem[] = [];
  for (const n of nodes) {
    if (!isMat(n) || fusedInto.has(n)) continue;
    const low = roots.get(n);
    if (!low) {
      items.push(n.op === "reduce" ? reduceKernel(n, isMat) : n.op === "collective" ? collectiveItem(n) : routineItem(n));
      continue;
    }
    const expr = exprs.get(low)!;
    const producer = low.fused;
    if (!producer) {
      items.push({ kind: "kernel", spec: kernelSpec(n, low, expr), out: n, inputs: low.inputs });
    } else if (producer.op === "reduce") {
      items.push(reduceKernel(producer, isMat, { root: n, low, expr }));
    } else {
      items.push(routineWithEpilogue(producer, n, low, expr));
    }
  }
  return items;
}

/** An inlined node is stored once instead when this many kernels would each recompute it... */
const SHARED_READERS = 2;
/** ...and it reads this many buffers (each a binding in every kernel that inlines it) or computes this many ops. */
const COSTLY_LOADS = 4;
const COSTLY_OPS = 32;

/**
 * Inlined nodes that several kernels would each recompute, and whose recomputation costs: a residual
 * stream x0 + a1 + f1 + ... read by every layer's kernels would otherwise be re-added, and re-bound,
 * in each of them (and run past a device's limit of buffers per kernel). One pass, users before
 * sources, so a stored node shields everything below it from its readers.
 */
function sharedAndCostly(nodes: readonly Node[], users: ReadonlyMap<Node, Node[]>, materialized: Set<Node>): Node[] {
  const readers = new Map<Node, Set<Node>>(); // node -> the kernels (stored nodes) that would inline it
  const out: Node[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (n.realized || materialized.has(n)) continue;
    const set = new Set<Node>();
    for (const u of users.get(n) ?? []) {
      if (materialized.has(u)) set.add(u);
      else for (const r of readers.get(u) ?? []) set.add(r);
    }
    readers.set(n, set);
    if (set.size < SHARED_READERS || n.op === "const" || n.op === "iota" || isMovement(n.op)) continue;
    const { loads, ops } = inlinedCost(n, materialized);
    if (loads >= COSTLY_LOADS || ops >= COSTLY_OPS) {
      materialized.add(n);
      out.push(n);
    }
  }
  return out;
}

/** Distinct buffers read and ops computed by the inlined subtree under n. */
function inlinedCost(n: Node, materialized: ReadonlySet<Node>): { loads: number; ops: number } {
  const buffers = new Set<Node>();
  const seen = new Set<Node>();
  let ops = 0;
  const stack = [n];
  while (stack.length) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    if (x !== n && (x.realized || materialized.has(x))) {
      buffers.add(x);
      continue;
    }
    if (!isMovement(x.op)) ops++;
    stack.push(...x.src);
  }
  return { loads: buffers.size, ops };
}

/**
 * Producers (reductions, matmuls) that may become the epilogue-carrying kernel of the one elementwise
 * root that reads them: every path up from the producer through inlined nodes ends at that root.
 */
function fusionTargets(
  nodes: readonly Node[],
  users: ReadonlyMap<Node, Node[]>,
  isMat: (n: Node) => boolean,
  targets: ReadonlySet<Node>,
  routineOperands: ReadonlySet<Node>,
): Map<Node, Node> {
  const out = new Map<Node, Node>();
  for (const p of nodes) {
    const kind = p.arg.kind === "routine" ? p.arg.name : p.op;
    const epilogueFree = p.arg.kind !== "routine" || !(p.arg.spec as MatmulSpec).epilogue;
    if ((kind !== "reduce" && kind !== "matmul") || !epilogueFree || targets.has(p) || routineOperands.has(p) || p.realized) continue;
    const frontier = new Set<Node>();
    const seen = new Set<Node>();
    const stack = [...(users.get(p) ?? [])];
    while (stack.length) {
      const u = stack.pop()!;
      if (seen.has(u)) continue;
      seen.add(u);
      if (isMat(u)) frontier.add(u);
      else stack.push(...(users.get(u) ?? []));
    }
    const [root] = frontier;
    if (frontier.size === 1 && root!.op !== "reduce" && root!.op !== "routine" && root!.op !== "collective") out.set(p, root!);
  }
  return out;
}

// The lowered expression of each root, kept beside its Lowering (slots and fused producer).
const exprs = new WeakMap<Lowering, Expr>();

function kernelName(prefix: string, n: Node): string {
  return `${prefix}_${n.op}_${n.shape.join("x") || "scalar"}`;
}

function kernelSpec(n: Node, low: Lowering, body: Expr): KernelSpec {
  return simplifyKernel({ name: kernelName("E", n), n: n.numel, out: n.dtype, inputs: low.inputs.map((i) => i.dtype), body });
}

/** A reduction kernel; with `tail`, the elementwise root that absorbed it becomes its epilogue. */
function reduceKernel(
  r: Node,
  isMat: (n: Node) => boolean,
  tail?: { root: Node; low: Lowering; expr: Expr },
): ScheduleItem {
  if (r.arg.kind !== "reduce") throw new Error(`schedule: ${r.describe()} has no reduce argument`);
  const { op, axes } = r.arg;
  const src = r.src[0]!;
  // Share the tail's slots so body and epilogue read from one numbering.
  const low = tail?.low ?? new Lowering(isMat, () => false);
  const outDims = Index.flat(r.shape, v("gid")).dims();
  const redShape = axes.map((a) => src.shape[a]!);
  const redDims = Index.flat(redShape, v("ridx")).dims();
  let j = 0;
  const dims = src.shape.map((_, i) => (axes.includes(i) ? redDims[j++]! : outDims[i]!));
  const body = low.lower(src, Index.ofDims(src.shape, dims), false);
  const out = tail?.root ?? r;
  const spec: KernelSpec = {
    name: kernelName("R", out),
    n: r.numel,
    out: out.dtype,
    inputs: low.inputs.map((i) => i.dtype),
    reduce: { op, size: redShape.reduce((a, b) => a * b, 1), dtype: r.dtype },
    body,
    ...(tail ? { epilogue: tail.expr } : {}),
  };
  return { kind: "kernel", spec: simplifyKernel(spec), out, inputs: low.inputs };
}

function routineItem(n: Node): ScheduleItem {
  if (n.arg.kind !== "routine") throw new Error(`schedule: ${n.describe()} has no routine argument`);
  const { name, spec } = n.arg;
  const count = routineOperands(name, spec);
  if (n.src.length !== count) throw new Error(`schedule: routine ${name} takes ${count} operands`);
  const inputs = n.src.map(contiguousBase);
  const alias = ROUTINE_IN_PLACE[name];
  if (alias !== undefined && !inputs[alias]!.realized) {
    throw new Error(`schedule: routine ${name} writes into operand ${alias} in place, which must be a realized buffer, not ${inputs[alias]!.describe()}`);
  }
  return { kind: "routine", name, spec, out: n, inputs };
}

/** A collective reads its one operand's whole buffer (realize.ts runs it through its process group). */
function collectiveItem(n: Node): ScheduleItem {
  if (n.arg.kind !== "collective" || n.src.length !== 1) throw new Error(`schedule: ${n.describe()} is not a one-operand collective`);
  return { kind: "collective", spec: n.arg.spec, out: n, inputs: [contiguousBase(n.src[0]!)] };
}

/** A buffer is row-major, so a reshape of a node reads the same bytes: routines take the node itself. */
function contiguousBase(n: Node): Node {
  while (n.op === "reshape" && !n.realized) n = n.src[0]!;
  return n;
}

/** A matmul whose single reader, an elementwise root, becomes its epilogue (bias, activation, residual). */
function routineWithEpilogue(r: Node, root: Node, low: Lowering, expr: Expr): ScheduleItem {
  if (r.arg.kind !== "routine") throw new Error(`schedule: ${r.describe()} has no routine argument`);
  const operands = routineOperands(r.arg.name, r.arg.spec);
  const spec = {
    ...(r.arg.spec as MatmulSpec),
    out: root.dtype,
    // The epilogue's gid is the output element, below root.numel.
    epilogue: { expr: shiftSlots(simplify(expr, { gid: root.numel }), operands), inputs: low.inputs.map((i) => i.dtype) },
  };
  return { kind: "routine", name: r.arg.name, spec, out: root, inputs: [...r.src.map(contiguousBase), ...low.inputs] };
}

/** Renumber an expression's loads: epilogue inputs follow the routine's own operands. */
function shiftSlots(root: Expr, by: number): Expr {
  const memo = new Map<Expr, Expr>(); // keeps shared subtrees shared
  const shift = (e: Expr): Expr => {
    let out = memo.get(e);
    if (out) return out;
    switch (e.k) {
      case "load": out = { ...e, slot: e.slot + by, idx: shift(e.idx) }; break;
      case "alu": out = { ...e, src: e.src.map(shift) }; break;
      case "cast": out = { ...e, src: shift(e.src) }; break;
      default: out = e;
    }
    memo.set(e, out);
    return out;
  };
  return shift(root);
}
