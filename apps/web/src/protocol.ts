// protocol.ts: the plain data between the page and the engine Worker (all structured-clone-able), and
// the Worker's API as comlink exposes it. The page never sees a tensor or a backend object.
import type { CpuPoolStats, EngineErrorData, EngineHealth, EngineStats, GenerateChunk, GenerateRequest, ModelCard } from "../../../src/web.js";

export type BackendChoice = "auto" | "webgpu" | "cpu";

export interface BackendReport {
  readonly name: "webgpu" | "cpu";
  /** The adapter or CPU, as the backend describes it. */
  readonly device: string;
  readonly vendor?: string;
  readonly architecture?: string;
  /** A software adapter (SwiftShader) or the JS cpu backend. */
  readonly software: boolean;
  /** Why WebGPU is not in use, when it was wanted and is missing. */
  readonly fallbackReason?: string;
  /** cpu: threads its kernels run on. */
  readonly threads?: number;
  /** Whether the page is cross-origin isolated (the condition for shared memory, hence for threads). */
  readonly isolated: boolean;
}

export interface LoadProgress {
  readonly phase: "download" | "read" | "upload";
  /** Bytes (download, read) or tensors (upload). */
  readonly done: number;
  readonly total: number;
  readonly file?: string;
}

export interface LoadedModelInfo {
  readonly id: string;
  readonly arch: string;
  readonly layers: number;
  readonly dim: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly parameters: number;
  readonly loadMs: number;
  readonly files: readonly string[];
}

/** A model to load by URL (the bundled default) with the file name it would have on disk. */
export interface ModelUrl {
  readonly name: string;
  readonly url: string;
}

export type GenerateResult = { readonly ok: true } | { readonly ok: false; readonly error: EngineErrorData };

export interface EngineWorkerApi {
  /**
   * Start a backend; "auto" is WebGPU when the browser has an adapter, else cpu (with the reason).
   * threads: the cpu backend's thread count (the page's ?threads=), else the default (hardwareConcurrency, capped).
   */
  start(choice: BackendChoice, threads?: string): Promise<BackendReport>;
  loadUrls(files: readonly ModelUrl[], onProgress: (p: LoadProgress) => void): Promise<LoadedModelInfo>;
  loadFiles(files: readonly File[], onProgress: (p: LoadProgress) => void): Promise<LoadedModelInfo>;
  /** Streams chunks to onChunk; resolves when the request ends (errors as data: comlink would drop the code). */
  generate(req: GenerateRequest, onChunk: (c: GenerateChunk) => void): Promise<GenerateResult>;
  abort(reqId: string): Promise<void>;
  models(): Promise<readonly ModelCard[]>;
  health(): Promise<EngineHealth>;
  stats(): Promise<EngineStats>;
  /** Destroys the WebGPU device as a driver reset would; false on cpu. For testing the page's recovery. */
  simulateDeviceLoss(): Promise<boolean>;
  /** The cpu backend's worker pool: threads, workers that have run a task, tasks shared. */
  cpuPool(): Promise<CpuPoolStats>;
}

/** What one generation on the page gave (the page's stats line shows the same numbers). */
export interface GenerateOutcome {
  readonly text: string;
  /** Tokens generated; undefined when a server's stream was stopped before its usage (it sends no token ids). */
  readonly tokens: number | undefined;
  /** Decode speed: tokens after the first over the time since the first. */
  readonly tokensPerSecond: number;
  readonly ttftMs: number;
  readonly finishReason: string;
}

/** window.kilnDemo: what tests (and the curious, from the console) can drive on the demo page. */
export interface DemoPageApi {
  /** Settles when the engine has started and the default model is loaded (or failed: see #message). */
  readonly ready: Promise<void>;
  /** Generate with the page's current settings, as the Generate button does. */
  generate(): Promise<GenerateOutcome>;
  loadFiles(files: readonly File[]): Promise<void>;
  /** What the Generate button does: generate, and on failure report it (and recover from a lost adapter). */
  generateFromButton(): Promise<void>;
  /** Destroys the Worker's GPU device, as a driver reset would (tests the recovery path). */
  simulateDeviceLoss(): Promise<boolean>;
  backend(): BackendReport | undefined;
  model(): LoadedModelInfo | undefined;
  /** The in-page engine's counts (running, waiting, KV cache usage). */
  stats(): Promise<EngineStats>;
  /** The cpu backend's worker pool in the engine Worker (tests check that its threads really ran). */
  cpuPool(): Promise<CpuPoolStats>;
  /** The progress reports of the last load, in order. */
  lastLoadProgress(): readonly LoadProgress[];
}

declare global {
  interface Window {
    kilnDemo?: DemoPageApi;
  }
}
