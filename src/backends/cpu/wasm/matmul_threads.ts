// matmul_threads.ts: worker threads that share the cpu matmul's tiled work. The kernel's wasm memory is a
// shared one; each worker instantiates the same module over it and, when the calling thread posts a
// product, sweeps the block driver over its own contiguous range of B's 8-column tiles (C columns), while the
// calling thread does the first range and then waits for the rest. Every element of C is computed by one
// thread in the same order as single-threaded: results are bit-identical whatever the thread count.
// Node only (worker_threads, and a blocking Atomics.wait on the calling thread); elsewhere there is
// no pool and the kernel runs on one thread. It owns the pool and the split, not the kernel or packing.

import { nodeBuiltin } from "../../../core/host.js";

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

// Control words (Int32Array over a SharedArrayBuffer).
// NOTE: each worker reports the sequence number it finished (DONE + its index), not a shared countdown:
// the caller waits until every worker has finished *this* product, so a late or repeated report can
// never be taken for the next one's (a countdown went to -1 once in a 2000-step run under load).
const SEQ = 0; // bumped by the caller to post a product
const FAILED = 1; // set by a worker that threw (its message goes to stderr)
const ARGS = 2; // the TileProduct's fields, in PRODUCT_FIELDS order
const PRODUCT_FIELDS = ["aOff", "rsA", "csA", "bOff", "ldb", "cOff", "ldc", "k", "mTiles", "nTiles"] as const;
const DONE = ARGS + PRODUCT_FIELDS.length; // DONE + w: the last product worker w finished (w = 1 .. threads - 1)

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, control, index, threads, consts } = workerData;
const ctl = new Int32Array(control);
const block = new WebAssembly.Instance(module, { env: { memory } }).exports.block;
const runShare = ${SHARE_SOURCE};
let seq = 0;
for (;;) {
  Atomics.wait(ctl, ${SEQ}, seq);
  const now = Atomics.load(ctl, ${SEQ});
  // NOTE: a wake-up without a new product must not run the last one again (it would add its share into
  // C twice): a 2000-step run under load once saw exactly that as a countdown going to -1.
  if (now === seq) continue;
  seq = now;
  try {
    const p = {};
    ${JSON.stringify(PRODUCT_FIELDS)}.forEach((name, i) => { p[name] = ctl[${ARGS} + i]; });
    runShare(block, consts, index, threads, p);
  } catch (e) {
    console.error("kiln cpu matmul worker " + index + ": " + (e && e.stack || e));
    Atomics.store(ctl, ${FAILED}, 1);
  }
  Atomics.store(ctl, ${DONE} + index, seq);
  Atomics.notify(ctl, ${DONE} + index);
}
`;

/** Products with fewer multiply-adds than this run on the calling thread: a hand-off costs ~10-50 us. */
export const MIN_SHARED_MACS = 1 << 22;

/**
 * How many threads share a product: KILN_CPU_THREADS when set (1 turns the pool off), else the host's
 * available parallelism, at most 8. 1 outside Node.
 */
export function matmulThreadCount(): number {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const os = nodeBuiltin("node:os");
  if (!os || !nodeBuiltin("node:worker_threads") || typeof SharedArrayBuffer !== "function") return 1;
  const raw = proc?.env?.KILN_CPU_THREADS;
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`KILN_CPU_THREADS must be an integer from 1 to 256, got ${JSON.stringify(raw)}`);
    return n;
  }
  return Math.max(1, Math.min(8, os.availableParallelism?.() ?? os.cpus().length));
}

export class MatmulPool {
  private readonly ctl: Int32Array;
  private seq = 0;

  private constructor(readonly threads: number, private readonly block: BlockFn, private readonly consts: BlockingConstants) {
    // NOTE: a browser page without cross-origin isolation has no SharedArrayBuffer at all: one thread, no words.
    this.ctl = threads > 1 ? new Int32Array(new SharedArrayBuffer((DONE + threads) * 4)) : new Int32Array(0);
  }

  /** A pool of threads - 1 workers over the module and its shared memory (the caller is the first thread). */
  static start(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, block: BlockFn, consts: BlockingConstants): MatmulPool {
    const wt = nodeBuiltin("node:worker_threads")!;
    const pool = new MatmulPool(threads, block, consts);
    for (let index = 1; index < threads; index++) {
      const w = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control: pool.ctl.buffer, index, threads, consts } });
      // NOTE: idle workers must not keep the process alive; they wait on the control word, not the event loop.
      w.unref();
    }
    return pool;
  }

  /** C = A . B for one product, shared across the threads when it is big enough. */
  run(p: TileProduct): void {
    const T = this.threads;
    const { MR, NR } = this.consts;
    if (T === 1 || p.nTiles < 2 * T || p.mTiles * MR * p.nTiles * NR * p.k < MIN_SHARED_MACS) {
      runShare(this.block, this.consts, 0, 1, p);
      return;
    }
    const ctl = this.ctl;
    for (let i = 0; i < PRODUCT_FIELDS.length; i++) ctl[ARGS + i] = p[PRODUCT_FIELDS[i]!];
    const seq = ++this.seq;
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    runShare(this.block, this.consts, 0, T, p);
    for (let w = 1; w < T; w++) {
      // NOTE: a short spin first: a worker usually finishes within microseconds of the caller, and a
      // blocking wait's wake-up costs more than that.
      for (let spin = 0; spin < 2000 && Atomics.load(ctl, DONE + w) !== seq; spin++);
      for (let waited = 0; ; waited++) {
        const done = Atomics.load(ctl, DONE + w);
        if (done === seq) break;
        if (Atomics.wait(ctl, DONE + w, done, 10_000) === "timed-out" && waited >= 6) {
          throw new Error(`cpu matmul: worker thread ${w} of ${T - 1} did not finish a product within 60 s`);
        }
      }
    }
    if (Atomics.load(ctl, FAILED)) throw new Error("cpu matmul: a worker thread failed (its error is on stderr); set KILN_CPU_THREADS=1 to run without them");
  }
}
