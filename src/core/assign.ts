// assign.ts orders and checks a schedule's assignments (Node.into, Tensor.assign: a kernel that writes
// into a realized node's own buffer). An assignment must not change what any other kernel reads, so the
// kernel writing a destination runs after every kernel that reads the old values (moved later when the
// schedule put it earlier; otherwise the schedule's order is kept), and it may read the destination
// itself only elementwise at its own output element (read before written, on every backend).
// It does not allocate or launch (realize.ts) nor decide what is a kernel (schedule.ts).

import type { DeviceBuffer } from "./backend.js";
import type { Node } from "./graph.js";
import type { Expr } from "./ir.js";
import { ROUTINE_IN_PLACE } from "./routines.js";
import type { ScheduleItem } from "./schedule.js";

/** The items in an order where every assignment follows the readers of its destination; throws where none exists. */
export function orderAssignments(items: readonly ScheduleItem[]): readonly ScheduleItem[] {
  // NOTE: keyed by memory, not node: another node lending the destination's buffer, or a view
  // (Node.viewOf) overlapping it, counts as the destination.
  const writes: { span: Span; at: number }[] = [];
  items.forEach((it, i) => {
    const d = it.out.into;
    if (!d) return;
    if (!d.buffer) throw new Error(`assign: the destination ${d.describe()} must be realized before the assignment is`);
    const span = spanOf(d);
    if (writes.some((w) => overlaps(w.span, span))) throw new Error(`assign: two assignments into one ${d.describe()} (or overlapping views of one buffer) in one realization`);
    writes.push({ span, at: i });
    const slot = it.inputs.findIndex((n) => n.buffer === d.buffer || (n.buffer !== undefined && sameSpan(spanOf(n), span)));
    if (slot >= 0 && !(it.kind === "kernel" && !it.spec.reduce && readsOnlyAtGid(it.spec.body, slot + 1))) {
      throw new Error(`assign: the value assigned into ${d.describe()} reads it other than elementwise at the same position (in ${describe(it)}); compute it into a tensor of its own first`);
    }
    const other = it.inputs.find((n) => n.buffer !== undefined && !sameSpan(spanOf(n), span) && overlaps(spanOf(n), span));
    if (other) throw new Error(`assign: the value assigned into ${d.describe()} reads ${other.describe()}, which shares part of its memory (a view or the base of one); compute it into a tensor of its own first`);
  });
  if (writes.length === 0) return items;
  const writersOf = (n: Node): number[] => {
    if (!n.buffer) return [];
    const span = spanOf(n);
    return writes.filter((w) => overlaps(w.span, span)).map((w) => w.at);
  };

  // Kahn's algorithm over data dependencies plus reader -> writer edges, smallest schedule index first.
  const producer = new Map<Node, number>(items.map((it, i) => [it.out, i]));
  const after: number[][] = items.map(() => []); // after[i]: items that must wait for item i
  const waiting = items.map(() => 0);
  const edge = (from: number, to: number) => (after[from]!.push(to), waiting[to]!++);
  // NOTE: a routine that writes an operand in place (kv_write) keeps its place relative to every
  // kernel reading that buffer, as in the schedule, so moving an assignment never moves it past one.
  const inPlace = new Map<DeviceBuffer, number[]>();
  items.forEach((it, k) => {
    const alias = it.kind === "routine" ? ROUTINE_IN_PLACE[it.name] : undefined;
    const buf = alias === undefined ? undefined : it.inputs[alias]!.buffer;
    if (buf) inPlace.set(buf, [...(inPlace.get(buf) ?? []), k]);
  });
  items.forEach((it, j) => {
    for (const n of it.inputs) {
      const p = producer.get(n);
      if (p !== undefined) edge(p, j);
      for (const w of writersOf(n)) if (w !== j) edge(j, w);
      for (const k of (n.buffer && inPlace.get(n.buffer)) || []) if (k !== j) (j < k ? edge(j, k) : edge(k, j));
    }
  });
  const ready = items.map((_, i) => i).filter((i) => waiting[i] === 0);
  const out: ScheduleItem[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    out.push(items[i]!);
    for (const j of after[i]!) {
      if (--waiting[j]! > 0) continue;
      let at = ready.length; // keep `ready` sorted: schedule order wherever the dependencies allow it
      while (at > 0 && ready[at - 1]! > j) at--;
      ready.splice(at, 0, j);
    }
  }
  if (out.length < items.length) {
    const stuck = items.find((_, i) => waiting[i]! > 0 && items[i]!.out.into)!;
    throw new Error(`assign: the value assigned into ${stuck.out.into!.describe()} depends on a kernel that reads its old values after it is written; realize that reader first`);
  }
  return out;
}

/** The bytes a realized node's buffer covers: its own allocation, or a view's range of its base's. */
interface Span {
  readonly root: DeviceBuffer;
  readonly start: number;
  readonly end: number;
}

function spanOf(n: Node): Span {
  const v = n.viewOf;
  if (v) return { root: v.base.buffer ?? n.buffer!, start: v.byteOffset, end: v.byteOffset + n.buffer!.nbytes };
  return { root: n.buffer!, start: 0, end: n.buffer!.nbytes };
}

const overlaps = (a: Span, b: Span) => a.root === b.root && a.start < b.end && b.start < a.end;
const sameSpan = (a: Span, b: Span) => a.root === b.root && a.start === b.start && a.end === b.end;

/** Whether every load of `slot` in the expression is at the output element itself. */
function readsOnlyAtGid(root: Expr, slot: number): boolean {
  // NOTE: iterative with a seen set: lowered expressions share subtrees (a DAG), so a plain recursion could revisit them exponentially.
  const seen = new Set<Expr>();
  const stack = [root];
  while (stack.length) {
    const e = stack.pop()!;
    if (seen.has(e)) continue;
    seen.add(e);
    if (e.k === "load") {
      if (e.slot === slot && !(e.idx.k === "var" && e.idx.name === "gid")) return false;
      stack.push(e.idx);
    } else if (e.k === "alu") stack.push(...e.src);
    else if (e.k === "cast") stack.push(e.src);
  }
  return true;
}

const describe = (it: ScheduleItem) =>
  `${it.kind === "kernel" ? `kernel ${it.spec.name}` : it.kind === "routine" ? `routine ${it.name}` : `collective ${it.spec.op}`} -> ${it.out.describe()}`;
