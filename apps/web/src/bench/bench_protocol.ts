// bench_protocol.ts: what the benchmark page and its Worker say to each other (through comlink), as
// plain, structured-clone-able data. The suite's own shapes (KernelResults, CaseResult) come from bench/lib.
import type { BackendInfo } from "../../../../src/web.js";
import type { CaseResult, KernelResults } from "../../../../bench/lib/results.js";

export type BenchBackend = "webgpu" | "cpu";

export interface BenchRunOptions {
  readonly backend: BenchBackend;
  /** Few timed runs (QUICK_POLICY); on a software GPU also the small browser-smoke sizes. */
  readonly quick: boolean;
}

/** Sent once the backend has started, before the first case runs. */
export interface BenchStarted {
  readonly backend: BackendInfo;
  readonly profile: KernelResults["profile"];
  /** Rows the run will report at most (variants that cannot run are skipped). */
  readonly expectedRows: number;
  /** Why WebGPU was not used when it was asked for (the run goes on on cpu). */
  readonly fallbackReason?: string;
}

export interface BenchWorkerApi {
  run(opts: BenchRunOptions, onStarted: (s: BenchStarted) => void, onResult: (r: CaseResult) => void): Promise<KernelResults>;
}

/** What the page exposes as window.kilnBench, for tests and the console. */
export interface KilnBenchApi {
  /** Run the suite (backend and quick default to the page's controls); rejects with the error the page shows. */
  run(opts?: Partial<BenchRunOptions>): Promise<KernelResults>;
  /** Every run on the page in order: its own runs and the loaded files. */
  results(): KernelResults[];
}

declare global {
  interface Window {
    kilnBench: KilnBenchApi;
  }
}
