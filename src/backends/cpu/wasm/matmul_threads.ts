// matmul_threads.ts: the cpu backend's worker threads. The matmul kernel's wasm memory is a shared one; each
// worker instantiates the same module over it. The calling thread posts a task cut into units, each thread
// (the caller too) owns a contiguous range of them and claims its own units first, in order, then any left
// in the other threads' ranges (each range has a shared counter, so every unit runs exactly once):
//   - a tile product (the packed path): one unit per thread, a contiguous range of B's 8-column tiles;
//   - a dots task (the few-rows path, decode, B stored (n, k)): units of B's rows (rows_threads.ts), read
//     in place when B is resident in the wasm memory (resident_heap.ts), else from B's own
//     SharedArrayBuffer, which each worker was sent once (see share());
//   - a quantized GEMV (matmul_q's decode step): units of w's rows (../matmul_q_rows.ts), read in place.
// Every element of C is computed by one thread in the same order as single-threaded: results are
// bit-identical whatever the thread count and whoever claims which unit.
// NOTE: claimed, not assigned: on a busy machine a worker may not get a core for milliseconds; the caller
// then runs its units too and closes the task to that worker (ENTER below) instead of waiting for it. Own
// range first: a thread then reads the same part of B every decode step, which can stay in its core's
// cache when the weights fit (stories260K), and a tile product splits exactly as a static split would.
// Node (worker_threads, buffers read with receiveMessageOnPort) and cross-origin isolated browsers (Web
// Workers, browser_workers.ts) run the same task text (TASK_SOURCE); elsewhere (a page without isolation
// has no SharedArrayBuffer) there is no pool and the kernels run on one thread. It owns the pool, the
// fork/join and the split of tile products, not the kernels, the packing or the thread count (../thread_count.ts).

import { nodeBuiltin } from "../../../core/host.js";
import { requestedThreadCount } from "../thread_count.js";
import { browserPoolPossible, canBlock, startBrowserWorkers } from "./browser_workers.js";
import type { DotsExports, DotsTask, DotsViews } from "./rows_threads.js";
import { DOTS_FIELDS, DOTS_SOURCE, dotsUnits, runDots } from "./rows_threads.js";
import type { QDotsTask, QViews } from "../matmul_q_rows.js";
import { F16_TABLE_SOURCE, QDOTS_FIELDS, QDOTS_SOURCE, qdotsUnits, runQDots } from "../matmul_q_rows.js";
import { Q4K_DOTS_SOURCE, Q4K_TASK, runQ4KDots } from "../matmul_q4k_rows.js";

/**
 * One product C = A . B over operands in wasm memory, as runPacked lays them out (offsets and strides in
 * floats): A(i, kk) at aOff + i*rsA + kk*csA, B(kk, j) at bOff + kk*ldb + j, C(i, j) at cOff + i*ldc + j,
 * for i < mTiles*MR, j < nTiles*NR, kk < k.
 */
export interface TileProduct {
  readonly aOff: number;
  readonly rsA: number;
  readonly csA: number;
  readonly bOff: number;
  readonly ldb: number;
  readonly cOff: number;
  readonly ldc: number;
  readonly k: number;
  readonly mTiles: number;
  readonly nTiles: number;
}

export interface BlockingConstants {
  readonly MR: number;
  readonly NR: number;
  readonly KC: number;
  readonly MC_PANELS: number;
}

type BlockFn = (ap: number, bp: number, cp: number, mTiles: number, nTiles: number, kc: number, ldc: number, ldb: number, rsA: number, csA: number, store: number) => void;

/**
 * The sweep one thread runs: for its share t of T of B's column tiles, every (k-block, A-block) pair through
 * the block driver, the first k-block storing into C and the rest adding to it. Written once as source so
 * the workers (which get it as text) run the same code.
 */
const SHARE_SOURCE = `function runShare(block, c, t, T, p) {
  const j0 = Math.floor((p.nTiles * t) / T), j1 = Math.floor((p.nTiles * (t + 1)) / T);
  if (j1 <= j0) return;
  for (let pc = 0; pc < p.k; pc += c.KC) {
    const kc = Math.min(c.KC, p.k - pc);
    for (let ic = 0; ic < p.mTiles; ic += c.MC_PANELS) {
      const tiles = Math.min(c.MC_PANELS, p.mTiles - ic);
      block((p.aOff + ic * c.MR * p.rsA + pc * p.csA) * 4, (p.bOff + pc * p.ldb + j0 * c.NR) * 4,
        (p.cOff + ic * c.MR * p.ldc + j0 * c.NR) * 4, tiles, j1 - j0, kc, p.ldc * 4, p.ldb * 4, p.rsA * 4, p.csA * 4, pc === 0 ? 1 : 0);
    }
  }
}`;
const runShare = new Function(`return ${SHARE_SOURCE}`)() as (block: BlockFn, c: BlockingConstants, t: number, T: number, p: TileProduct) => void;

// Control words (Int32Array over a SharedArrayBuffer; the task's fields are read as unsigned: byte offsets
// into a 4 GiB memory).
// NOTE: each worker reports the sequence number it finished (DONE + its index), not a shared countdown:
// the caller waits until every worker that entered *this* task has finished it, so a late or repeated
// report can never be taken for the next one's (a countdown went to -1 once in a 2000-step run under load).
const SEQ = 0; // bumped by the caller to post a task
const FAILED = 1; // set by a worker that threw (its message goes to stderr)
const KIND = 2; // 0: a tile product, 1: a dots task, 2: a quantized GEMV
const MSGS = 3; // buffer messages posted to each worker so far (it reads them before a dots task)
const UNITS = 4; // how many units the current task has
const ARGS = 5; // the task's fields, in PRODUCT_FIELDS or DOTS_FIELDS order
const PRODUCT_FIELDS = ["aOff", "rsA", "csA", "bOff", "ldb", "cOff", "ldc", "k", "mTiles", "nTiles"] as const;
const ENTER = ARGS + Math.max(PRODUCT_FIELDS.length, DOTS_FIELDS.length, QDOTS_FIELDS.length); // ENTER + w: seq when worker w took part in task seq, -seq when the caller closed it to w
const DONE = (threads: number): number => ENTER + threads; // DONE + w: the last task worker w finished
const NEXT = (threads: number): number => ENTER + 2 * threads; // NEXT + t: the next unclaimed unit of thread t's range

/**
 * Thread `index` of `threads` runs `run(u)` for each unit it claims: its own range's first, then the others'.
 * Thread t's range is [floor(units*t/T), floor(units*(t+1)/T)); the caller sets each range's counter to its start.
 */
const CLAIM_SOURCE = `function claim(ctl, next, index, threads, units, run) {
  for (let i = 0; i < threads; i++) {
    const t = (index + i) % threads;
    const end = Math.floor((units * (t + 1)) / threads);
    for (let u; (u = Atomics.add(ctl, next + t, 1)) < end; ) run(u);
  }
}`;
const claim = new Function(`return ${CLAIM_SOURCE}`)() as (ctl: Int32Array, next: number, index: number, threads: number, units: number, run: (u: number) => void) => void;

/**
 * Loads a worker spins on the sequence word before it blocks in Atomics.wait (and the caller on a worker's
 * done word). NOTE: decode posts a task every ~0.05-1 ms; a blocked thread's wake-up costs tens of
 * microseconds, a spin of this length a few (bench/threads.ts measures the fork/join).
 */
const WORKER_SPIN = 20_000;
const CALLER_SPIN = 20_000;

/**
 * What every worker runs for task `seq` once it has seen it posted, as source text shared by the Node workers
 * (below) and the browser's (browser_workers.ts). In scope where it is pasted: ctl/args (the control words),
 * index, threads, consts, memory, ex (this worker's instance of the module) and receive() (the next buffer
 * message posted to this worker, or undefined when none has arrived yet).
 */
export const TASK_SOURCE = `
const DONE = ${ENTER} + threads;
const NEXT = ${ENTER} + 2 * threads;
const claim = ${CLAIM_SOURCE};
const runShare = ${SHARE_SOURCE};
const runDots = ${DOTS_SOURCE};
const runQDots = ${QDOTS_SOURCE};
const runQ4KDots = ${Q4K_DOTS_SOURCE};
let f16;
const buffers = new Map();
let msgs = 0;
let mem = { f32: new Float32Array(0), u16: new Uint16Array(0) };
const read = (names) => { const p = {}; names.forEach((name, i) => { p[name] = args[${ARGS} + i]; }); return p; };
function runTask(seq) {
  // Enter the task unless the caller already closed it to this worker (it ran every unit itself).
  const was = Atomics.load(ctl, ${ENTER} + index);
  if (was === -seq || Atomics.compareExchange(ctl, ${ENTER} + index, was, seq) !== was) return;
  try {
    const units = ctl[${UNITS}];
    if (ctl[${KIND}] === 0) {
      const p = read(${JSON.stringify(PRODUCT_FIELDS)});
      claim(ctl, NEXT, index, threads, units, (u) => runShare(ex.block, consts, u, units, p));
    } else {
      // Buffers first: the caller posted each one (and each release) before the task that needs it.
      for (const want = Atomics.load(ctl, ${MSGS}); msgs < want; ) {
        const d = receive();
        if (d === undefined) continue;
        msgs++;
        if (d.release !== undefined) buffers.delete(d.release);
        else buffers.set(d.id, { f32: new Float32Array(d.sab, 0, d.sab.byteLength >> 2), u16: new Uint16Array(d.sab, 0, d.sab.byteLength >> 1), u8: new Uint8Array(d.sab), i8: new Int8Array(d.sab) });
      }
      const named = (id) => {
        const b = buffers.get(id);
        if (!b) throw new Error("a task names buffer " + id + ", which this worker was never sent");
        return b;
      };
      if (ctl[${KIND}] === 1) {
        const p = read(${JSON.stringify(DOTS_FIELDS)});
        const b = p.buf === 0 ? undefined : named(p.buf); // 0: B resident in the wasm memory
        // NOTE: compared by size: after a grow, a shared memory's buffer is a new, longer object.
        if (mem.f32.byteLength !== memory.buffer.byteLength) mem = { f32: new Float32Array(memory.buffer), u16: new Uint16Array(memory.buffer) };
        const src = b === undefined ? undefined : p.dtype === 0 ? b.f32 : b.u16;
        claim(ctl, NEXT, index, threads, units, (u) => runDots(ex, mem, src, index, u, p));
      } else {
        const p = read(${JSON.stringify(QDOTS_FIELDS)});
        const w = named(p.buf), s = named(p.sbuf);
        f16 ??= ${F16_TABLE_SOURCE};
        const rows = p.q4 === ${Q4K_TASK} ? runQ4KDots : runQDots;
        claim(ctl, NEXT, index, threads, units, (u) => rows(f16, w, s, u, p));
      }
    }
  } catch (e) {
    console.error("kiln cpu worker thread " + index + ": " + (e && e.stack || e));
    Atomics.store(ctl, ${FAILED}, 1);
  }
  Atomics.store(ctl, DONE + index, seq);
  Atomics.notify(ctl, DONE + index);
}
`;

/** The Node worker: workerData carries everything; buffers arrive on its port, read synchronously. */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads");
const { module, memory, control, index, threads, consts, port } = workerData;
const ctl = new Int32Array(control);
const args = new Uint32Array(control);
const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
const receive = () => receiveMessageOnPort(port)?.message;
${TASK_SOURCE}
Atomics.store(ctl, DONE + index, -1); // started (cpuPoolStats)
let seq = 0;
for (;;) {
  for (let spin = 0; spin < ${WORKER_SPIN} && Atomics.load(ctl, ${SEQ}) === seq; spin++);
  Atomics.wait(ctl, ${SEQ}, seq);
  const now = Atomics.load(ctl, ${SEQ});
  // NOTE: a wake-up without a new task must not run the last one again (it would add its share into
  // C twice): a 2000-step run under load once saw exactly that as a countdown going to -1.
  if (now === seq) continue;
  seq = now;
  runTask(seq);
}
`;

/** Products with fewer multiply-adds than this run on the calling thread: a hand-off costs ~10-50 us. */
export const MIN_SHARED_MACS = 1 << 22;

const inNode = (): boolean => nodeBuiltin("node:os") !== undefined && nodeBuiltin("node:worker_threads") !== undefined;

/**
 * How many threads the kernels run on: the requested count (KILN_THREADS or setThreadCount, thread_count.ts)
 * where this host can run a pool (Node with worker_threads and SharedArrayBuffer; a cross-origin isolated
 * page or Worker), else 1.
 */
export function matmulThreadCount(): number {
  if (typeof SharedArrayBuffer !== "function" || !(inNode() || browserPoolPossible())) return 1;
  return requestedThreadCount();
}

/** What the pool has done so far, for a page's report and for tests that check the threads really ran. */
export interface CpuPoolStats {
  /** Threads the kernels run on (the caller counts as one). */
  readonly threads: number;
  /** Workers that have started (a browser's start asynchronously: the caller runs every task alone until then). */
  readonly workersStarted: number;
  /**
   * Workers that have run a part of a task. NOTE: a small task (stories260K's decode products take
   * microseconds) may be done by the caller before a waiting worker wakes: a started worker may not join.
   */
  readonly workersJoined: number;
  /** Tasks shared with the workers, by kind. */
  readonly shared: { readonly tiles: number; readonly dots: number; readonly qdots: number };
}

export function cpuPoolStats(): CpuPoolStats {
  if (!current) return { threads: matmulThreadCount(), workersStarted: 0, workersJoined: 0, shared: { tiles: 0, dots: 0, qdots: 0 } };
  return { threads: current.threads, ...current.workers(), shared: { ...current.shared } };
}

/** The pool the kernel started (undefined before, and with one thread): the few-rows path asks it. */
let current: MatmulPool | undefined;
export const matmulPool = (): MatmulPool | undefined => current;

export class MatmulPool {
  private readonly ctl: Int32Array;
  private readonly args: Uint32Array;
  private readonly ports: { postMessage(m: unknown): void }[] = [];
  private seq = 0;
  private msgs = 0;
  /** Buffers sent to the workers, by identity, and their ids; a collected one is released there. */
  private readonly sent = new WeakMap<SharedArrayBuffer, number>();
  private nextId = 1;
  /** Tasks shared with the workers so far, by kind (tests check that a path they mean to exercise ran). */
  readonly shared = { tiles: 0, dots: 0, qdots: 0 };
  private readonly released = new FinalizationRegistry<number>((id) => this.post({ release: id }));
  /** Whether this thread may block in Atomics.wait (not a page's main thread: it spins there). */
  private readonly blocks = canBlock(inNode());

  private constructor(readonly threads: number, private readonly block: BlockFn, private readonly consts: BlockingConstants) {
    // NOTE: a browser page without cross-origin isolation has no SharedArrayBuffer at all: one thread, no words.
    this.ctl = threads > 1 ? new Int32Array(new SharedArrayBuffer((NEXT(threads) + threads) * 4)) : new Int32Array(0);
    this.args = new Uint32Array(this.ctl.buffer);
  }

  /** A pool of threads - 1 workers over the module and its shared memory (the caller is the first thread). */
  static start(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, block: BlockFn, consts: BlockingConstants): MatmulPool {
    const pool = new MatmulPool(threads, block, consts);
    const wt = nodeBuiltin("node:worker_threads");
    if (!wt) {
      const inits = Array.from({ length: threads - 1 }, (_, i) => ({ module, memory, control: pool.ctl.buffer as SharedArrayBuffer, index: i + 1, threads, consts }));
      pool.ports.push(...startBrowserWorkers(TASK_SOURCE, { seq: SEQ, msgs: MSGS, spin: WORKER_SPIN }, inits));
    }
    for (let index = 1; wt && index < threads; index++) {
      const { port1, port2 } = new wt.MessageChannel();
      const w = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control: pool.ctl.buffer, index, threads, consts, port: port2 }, transferList: [port2] });
      // NOTE: idle workers must not keep the process alive; they wait on the control word, not the event loop.
      w.unref();
      port1.unref();
      pool.ports.push(port1);
    }
    if (threads > 1) current = pool;
    return pool;
  }

  /** Workers started and joined: a worker's done word is 0 until it starts, -1 until its first task, then that task's seq. */
  workers(): { workersStarted: number; workersJoined: number } {
    let workersStarted = 0, workersJoined = 0;
    for (let w = 1; w < this.threads; w++) {
      const d = Atomics.load(this.ctl, DONE(this.threads) + w);
      if (d !== 0) workersStarted++;
      if (d > 0) workersJoined++;
    }
    return { workersStarted, workersJoined };
  }

  private post(message: unknown): void {
    for (const port of this.ports) port.postMessage(message);
    Atomics.store(this.ctl, MSGS, ++this.msgs);
  }

  /**
   * The id under which the workers read `buffer` (sent to them on first use), or undefined when it is not
   * a SharedArrayBuffer (then the task runs on the calling thread: an ArrayBuffer cannot be shared).
   */
  share(buffer: ArrayBufferLike): number | undefined {
    if (this.threads === 1 || typeof SharedArrayBuffer !== "function" || !(buffer instanceof SharedArrayBuffer)) return undefined;
    let id = this.sent.get(buffer);
    if (id === undefined) {
      id = this.nextId++;
      this.post({ id, sab: buffer });
      this.sent.set(buffer, id);
      this.released.register(buffer, id);
    }
    return id;
  }

  /** C = A . B for one product, shared across the threads when it is big enough. */
  run(p: TileProduct): void {
    const T = this.threads;
    const { MR, NR } = this.consts;
    if (T === 1 || p.nTiles < 2 * T || p.mTiles * MR * p.nTiles * NR * p.k < MIN_SHARED_MACS) {
      runShare(this.block, this.consts, 0, 1, p);
      return;
    }
    // NOTE: one unit per thread, as the static split was: each unit sweeps all of A past its columns of B.
    this.shared.tiles++;
    this.fork(0, PRODUCT_FIELDS, p, T, (u) => runShare(this.block, this.consts, u, T, p));
  }

  /** A dots task (rows_threads.ts) over all threads; src is B's buffer (registered by share()) as f32 or u16, undefined when B is resident (p.buf 0). */
  runDots(p: DotsTask, ex: DotsExports, mem: DotsViews, src: Float32Array | Uint16Array | undefined): void {
    this.shared.dots++;
    this.fork(1, DOTS_FIELDS, p, dotsUnits(p), (u) => runDots(ex, mem, src, 0, u, p));
  }

  /**
   * A quantized GEMV (../matmul_q_rows.ts; ../matmul_q4k_rows.ts when p.q4 is Q4K_TASK) over all threads; w
   * and s are the buffers registered as p.buf and p.sbuf.
   */
  runQDots(p: QDotsTask, f16: Float32Array, w: QViews, s: QViews): void {
    this.shared.qdots++;
    const rows = p.q4 === Q4K_TASK ? runQ4KDots : runQDots;
    this.fork(2, QDOTS_FIELDS, p, qdotsUnits(p), (u) => rows(f16, w, s, u, p));
  }

  /** Posts a task of `units` units, claims units on this thread too, then waits for the workers that took part. */
  private fork<P>(kind: number, fields: readonly (keyof P & string)[], p: P, units: number, unit: (u: number) => void): void {
    const T = this.threads;
    const ctl = this.ctl;
    const done = DONE(T);
    ctl[KIND] = kind;
    ctl[UNITS] = units;
    for (let i = 0; i < fields.length; i++) this.args[ARGS + i] = p[fields[i]!] as number;
    const next = NEXT(T);
    for (let t = 0; t < T; t++) Atomics.store(ctl, next + t, Math.floor((units * t) / T));
    const seq = ++this.seq;
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    claim(ctl, next, 0, T, units, unit);
    for (let w = 1; w < T; w++) {
      // Close the task to a worker that has not entered it yet (it then skips it); wait for one that has.
      const was = Atomics.load(ctl, ENTER + w);
      if (was !== seq && Atomics.compareExchange(ctl, ENTER + w, was, -seq) === was) continue;
      // NOTE: a short spin first: a worker usually finishes within microseconds of the caller, and a
      // blocking wait's wake-up costs more than that.
      for (let spin = 0; spin < CALLER_SPIN && Atomics.load(ctl, done + w) !== seq; spin++);
      for (let waited = 0; ; waited++) {
        const d = Atomics.load(ctl, done + w);
        if (d === seq) break;
        const timedOut = this.blocks ? Atomics.wait(ctl, done + w, d, 10_000) === "timed-out" : spinWhile(ctl, done + w, d, 10_000);
        if (timedOut && waited >= 6) throw new Error(`cpu matmul: worker thread ${w} of ${T - 1} did not finish a task within 60 s`);
      }
    }
    if (Atomics.load(ctl, FAILED)) throw new Error("cpu matmul: a worker thread failed (its error is on stderr); set KILN_THREADS=1 to run without them");
  }
}

/** Atomics.wait's answer for a thread that may not block: spins while ctl[i] is `value`, at most `ms`; true when it timed out. */
function spinWhile(ctl: Int32Array, i: number, value: number, ms: number): boolean {
  const t0 = performance.now();
  for (let n = 1; Atomics.load(ctl, i) === value; n++) if ((n & 4095) === 0 && performance.now() - t0 > ms) return true;
  return false;
}
