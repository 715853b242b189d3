// realize.ts runs a schedule: plans memory, compiles (cached by the backend), launches in order.
// Targets keep their buffers; every other buffer is returned to a local pool after its last reader,
// so the next kernel of the same size reuses it (buffer reuse by liveness), then freed at the end.
// A LaunchRecorder (jit.ts) can watch the launches and keep the intermediate buffers instead.
// A node assigned into a realized one (Node.into, Tensor.assign) is computed into that node's buffer.

import type { Backend, DeviceBuffer, Executable } from "./backend.js";
import { debugLevel, debugLog } from "./debug.js";
import type { Node } from "./graph.js";
import type { ScheduleItem } from "./schedule.js";
import { schedule } from "./schedule.js";
import { orderAssignments } from "./assign.js";
import { ROUTINE_IN_PLACE } from "./routines.js";
import { categoryOf, memoryAccountant } from "./memory.js";
import { runCollective } from "./collectives.js";

/** Receives every launch of a realization, and the buffers that would otherwise be freed. */
export interface LaunchRecorder {
  /** `owners` are the nodes whose buffers the launch binds: a recorder keeps them alive (and so their buffers). */
  launch(exe: Executable, bufs: readonly DeviceBuffer[], owners: readonly Node[]): void;
  /** Host work between launches (a collective, collectives.ts), to be awaited in its place on replay. */
  host(name: string, run: (bufs: readonly DeviceBuffer[]) => Promise<void>, bufs: readonly DeviceBuffer[], owners: readonly Node[]): void;
  keep(buf: DeviceBuffer): void;
}

/** Compute the targets' buffers. Targets already realized are left alone. */
export async function realize(targets: readonly Node[], recorder?: LaunchRecorder): Promise<void> {
  const todo = targets.filter((t) => {
    if (t.disposed) throw new Error(`use of a disposed tensor: ${t.describe()}`);
    return !t.realized;
  });
  if (todo.length === 0) return;
  const backend = todo[0]!.backend;
  for (const t of todo) {
    if (t.backend !== backend) {
      throw new Error(`cannot realize values of two backends together: ${t.describe()} and one on ${backend.name}`);
    }
  }
  const items = orderAssignments(schedule(todo));
  const dbg = debugLevel();
  if (dbg >= 1) debugLog(`schedule: ${items.length} kernels for ${todo.length} targets\n` + items.map(describeItem).join("\n"));

  const exes = await Promise.all(items.map((it) => (it.kind === "collective" ? undefined : compileItem(backend, it))));
  if (dbg >= 2) exes.forEach((e, i) => e && debugLog(`--- ${items[i]!.out.describe()} -> ${e.name}\n${backend.source?.(e) ?? "(no source)"}`));

  const plan = planMemory(items, new Set(todo));
  const buffers = new Map<Node, DeviceBuffer>();
  const pool = new Map<number, DeviceBuffer[]>();
  const memory = memoryAccountant(backend);
  const take = (n: Node): DeviceBuffer => {
    const reuse = pool.get(n.nbytes)?.pop();
    // NOTE: at least one word, so empty tensors still have a (valid) buffer on every device.
    const buf = reuse ?? backend.alloc(Math.max(n.nbytes, 4));
    memory?.assign(buf, categoryOf(n));
    return buf;
  };
  const bufferOf = (n: Node): DeviceBuffer => {
    const b = n.buffer ?? buffers.get(n);
    if (!b) throw new Error(`realize: ${n.describe()} is read before it is computed`);
    return b;
  };
  try {
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const alias = inPlaceOperand(it);
      const into = it.out.into;
      const out = alias !== undefined ? bufferOf(it.inputs[alias]!) : into ? bufferOf(into) : take(it.out);
      buffers.set(it.out, out);
      const bufs = [out, ...it.inputs.map(bufferOf)];
      const t0 = dbg >= 4 ? performance.now() : 0;
      // An empty output has nothing to compute (and some devices reject empty dispatches).
      if (it.kind === "collective") {
        const { spec } = it;
        const [inBytes, outBytes] = [it.inputs[0]!.nbytes, it.out.nbytes];
        const run = (b: readonly DeviceBuffer[]) => runCollective(backend, spec, b[0]!, b[1]!, inBytes, outBytes);
        await run(bufs);
        recorder?.host(`collective ${spec.op} ${inBytes} bytes`, run, bufs, [it.out, ...it.inputs]);
      } else if (it.out.numel > 0) {
        backend.launch(exes[i]!, bufs);
        recorder?.launch(exes[i]!, bufs, [it.out, ...it.inputs]);
      }
      if (dbg >= 3) debugLog(`launch ${exes[i]?.name ?? it.kind} (${bufs.map((b) => b.nbytes).join(", ")} bytes)`);
      if (dbg >= 4) {
        await backend.synchronize();
        debugLog(`  ${(performance.now() - t0).toFixed(3)} ms`);
      }
      for (const dead of plan.freeAfter[i]!) {
        const b = buffers.get(dead)!;
        buffers.delete(dead);
        const list = pool.get(dead.nbytes) ?? [];
        memory?.assign(b, "workspace");
        list.push(b);
        pool.set(dead.nbytes, list);
      }
    }
  } catch (err) {
    for (const [n, b] of buffers) if (!plan.aliased.has(n)) backend.free(b);
    throw err;
  } finally {
    for (const list of pool.values()) for (const b of list) (recorder ? recorder.keep(b) : backend.free(b));
  }
  // A target written in place shares its operand's buffer: lent, so only the operand frees it.
  for (const t of todo) t.setBuffer(buffers.get(t)!, !plan.aliased.has(t));
}

/** The operand whose buffer a routine writes in place, if it does. */
function inPlaceOperand(it: ScheduleItem): number | undefined {
  return it.kind === "routine" ? ROUTINE_IN_PLACE[it.name] : undefined;
}

/** For each item, the intermediates whose last reader it is; and the outputs that alias an operand. */
function planMemory(items: readonly ScheduleItem[], targets: ReadonlySet<Node>): { freeAfter: Node[][]; aliased: Set<Node> } {
  const last = new Map<Node, number>();
  const aliased = new Set<Node>();
  items.forEach((it, i) => {
    it.inputs.forEach((n) => !n.realized && last.set(n, i));
    if (inPlaceOperand(it) !== undefined) aliased.add(it.out);
  });
  for (const it of items) if (it.out.into) aliased.add(it.out);
  const freeAfter: Node[][] = items.map(() => []);
  // NOTE: an aliased buffer belongs to the realized operand; it must never reach the reuse pool.
  for (const [n, i] of last) if (!targets.has(n) && !aliased.has(n)) freeAfter[i]!.push(n);
  // An output nobody here reads (reached only through an ordering edge, graph.ts's `after`) is dead at once.
  items.forEach((it, i) => {
    if (!last.has(it.out) && !targets.has(it.out) && !aliased.has(it.out)) freeAfter[i]!.push(it.out);
  });
  return { freeAfter, aliased };
}

async function compileItem(backend: Backend, it: Exclude<ScheduleItem, { kind: "collective" }>): Promise<Executable> {
  try {
    if (it.kind === "kernel") return await backend.compile(it.spec);
    return await backend.routine(it.name, it.spec);
  } catch (err) {
    const what = it.kind === "kernel" ? `kernel ${it.spec.name}` : `routine ${it.name}`;
    throw new Error(`${backend.name}: ${what} for ${it.out.describe()} failed: ${(err as Error).message}`, { cause: err });
  }
}

function describeItem(it: ScheduleItem): string {
  const ins = it.inputs.map((n) => `#${n.id}`).join(", ");
  if (it.kind === "routine") return `  routine ${it.name} -> #${it.out.id} ${it.out.describe()} <- ${ins}`;
  if (it.kind === "collective") return `  collective ${it.spec.op} (group #${it.spec.group}) -> #${it.out.id} ${it.out.describe()} <- ${ins}`;
  const r = it.spec.reduce ? ` reduce ${it.spec.reduce.op}x${it.spec.reduce.size}` : "";
  const e = it.spec.epilogue ? " +epilogue" : "";
  return `  kernel ${it.spec.name}${r}${e} -> #${it.out.id} <- ${ins}`;
}
