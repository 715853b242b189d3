// browser_workers.ts: the cpu backend's worker threads in a browser: Web Workers over the same shared
// WebAssembly.Memory and control SharedArrayBuffer as Node's worker_threads, running the same task text
// (matmul_threads.ts TASK_SOURCE: the fork/join protocol, the work claiming and the kernels' loops), so
// results are bit-identical whatever the thread count, in Node or in a page. It owns what differs in a
// browser: when a pool is possible, how a worker starts (a module-free script from a Blob URL, its
// module and memory sent in its first message) and how it waits for tasks and buffer messages.
// NOTE: a browser has no receiveMessageOnPort: a message reaches a worker only between turns of its event
// loop. So a worker blocks in Atomics.wait for a task (allowed in a Worker), and before it enters one it
// returns to its event loop until every buffer message the caller has posted (the MSGS word) has arrived.
// Entering late is safe: the caller runs every unit nobody has claimed and closes the task to a worker
// that has not entered (matmul_threads.ts fork). It does not own the pool, the thread count or the kernels.

/** What a browser pool needs from the host: shared memory (cross-origin isolation) and Workers from Blob URLs. */
export function browserPoolPossible(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown; Blob?: unknown; URL?: { createObjectURL?: unknown } };
  return g.crossOriginIsolated === true && typeof SharedArrayBuffer === "function" && typeof g.Worker === "function" && typeof g.Blob === "function" && typeof g.URL?.createObjectURL === "function";
}

/**
 * Whether this thread may block in Atomics.wait: Node and Workers may; a page's main thread may not (it
 * throws there), so a pool's caller on the main thread spins instead (matmul_threads.ts fork).
 */
export function canBlock(node: boolean): boolean {
  return node || typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
}

/** The first message each worker gets: what Node passes as workerData. */
export interface BrowserWorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly index: number;
  readonly threads: number;
  readonly consts: unknown;
}

/** The control words the worker loop reads (matmul_threads.ts owns their layout) and its spin length. */
export interface LoopWords {
  readonly seq: number;
  readonly msgs: number;
  readonly spin: number;
}

/** The browser worker's script: its first message starts it, later ones are buffer messages (its inbox). */
function workerSource(task: string, w: LoopWords): string {
  return `
const inbox = [];
let arrived;
self.onmessage = (e) => { inbox.push(e.data); if (arrived) arrived(); };
const next = () => new Promise((resolve) => { arrived = resolve; });
(async () => {
  while (inbox.length === 0) await next();
  const { module, memory, control, index, threads, consts } = inbox.shift();
  const ctl = new Int32Array(control);
  const args = new Uint32Array(control);
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const receive = () => inbox.shift();
  ${task}
  Atomics.store(ctl, DONE + index, -1); // started (matmul_threads.ts cpuPoolStats)
  let seq = 0;
  for (;;) {
    for (let spin = 0; spin < ${w.spin} && Atomics.load(ctl, ${w.seq}) === seq; spin++);
    Atomics.wait(ctl, ${w.seq}, seq);
    const now = Atomics.load(ctl, ${w.seq});
    if (now === seq) continue;
    seq = now;
    // Buffer messages posted before this task arrive only when this worker yields to its event loop.
    while (msgs + inbox.length < Atomics.load(ctl, ${w.msgs})) await next();
    runTask(seq);
  }
})().catch((e) => console.error("kiln cpu worker: " + (e && e.stack || e)));
`;
}

/** Starts one Web Worker per init; returns them (the pool posts buffer messages to each). */
export function startBrowserWorkers(task: string, words: LoopWords, inits: readonly BrowserWorkerInit[]): { postMessage(m: unknown): void }[] {
  if (inits.length === 0) return [];
  // NOTE: a Blob URL, not a bundled file: the worker's code is the pool's shared source text, and a page
  // under COEP may start a Worker from a blob: URL of its own. It is not revoked: a Worker's script may
  // still be loading when its constructor returns, and there is one such URL per pool.
  const url = URL.createObjectURL(new Blob([workerSource(task, words)], { type: "text/javascript" }));
  return inits.map((init) => {
    const w = new Worker(url, { name: `kiln cpu thread ${init.index}` });
    w.onerror = (e) => console.error(`kiln cpu worker thread ${init.index} failed to start: ${e.message}`);
    w.postMessage(init);
    return w;
  });
}
