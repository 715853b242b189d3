// worker.ts: the engine in a module Worker, so the page stays responsive while the model loads and
// generates. It starts a backend (WebGPU on a hardware adapter, else cpu, saying why),
// opens a model from fetched or picked files, serves it with the same Engine as `kiln serve`, and
// exposes EngineWorkerApi through comlink.
import * as Comlink from "comlink";
import type { Backend, EngineHealth, EngineStats, GenerateChunk, GenerateRequest, ModelCard, ModelFile, OpenedModel } from "../../../src/web.js";
import { Engine, EngineError, cpuPoolStats, fromLoaded, getBackend, openModelFiles, setThreadCount } from "../../../src/web.js";
import type { BackendChoice, BackendReport, EngineWorkerApi, GenerateResult, LoadedModelInfo, LoadProgress, ModelUrl } from "./protocol.js";
import { installShaders } from "./shaders.js";

installShaders();

let backend: Backend | undefined;
let engine: Engine | undefined;
/** The requests in flight, by id: abort(reqId) aborts their signal. */
const aborters = new Map<string, AbortController>();
const started = performance.now();

async function start(choice: BackendChoice, threads?: string): Promise<BackendReport> {
  // NOTE: before any backend starts: the cpu backend reads its thread count once (a new Worker per start).
  if (threads !== undefined) setThreadCount(threads, "the threads URL parameter");
  let fallbackReason: string | undefined;
  if (choice !== "cpu") {
    try {
      backend = await getBackend("webgpu");
    } catch (err) {
      if (choice === "webgpu") throw err;
      fallbackReason = (err as Error).message;
    }
  }
  // NOTE: as in Node (backends/index.ts), a software adapter (SwiftShader) ranks below the cpu backend
  // unless asked for by name: it is tens of times slower on the same machine.
  if (choice === "auto" && backend?.info.software) {
    fallbackReason = `the only WebGPU adapter is a software renderer (${backend.info.device}), slower than the cpu backend; add ?backend=webgpu to the URL to use it anyway`;
    backend.dispose(); // NOTE: this Worker never asks for webgpu again (a restart is a new Worker).
    backend = undefined;
  }
  backend ??= await getBackend("cpu");
  const d = backend.info.details;
  return {
    name: backend.name as "webgpu" | "cpu",
    device: backend.info.device,
    software: backend.info.software,
    ...(d.vendor ? { vendor: d.vendor } : {}),
    ...(d.architecture ? { architecture: d.architecture } : {}),
    ...(fallbackReason ? { fallbackReason } : {}),
    ...(backend.name === "cpu" ? { threads: Number(d.threads ?? 1) } : {}),
    isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
  };
}

/** Fetches a file, reporting bytes as they arrive. */
async function download(f: ModelUrl, onProgress: (p: LoadProgress) => void): Promise<ModelFile> {
  const res = await fetch(f.url);
  if (!res.ok || !res.body) throw new Error(`${f.name}: download failed (HTTP ${res.status} from ${f.url})`);
  const total = Number(res.headers.get("content-length") ?? 0);
  const parts: Uint8Array[] = [];
  let done = 0;
  for (const reader = res.body.getReader(); ; ) {
    const { value, done: end } = await reader.read();
    if (end) break;
    parts.push(value);
    done += value.byteLength;
    onProgress({ phase: "download", done, total: Math.max(total, done), file: f.name });
  }
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const p of parts) bytes.set(p, (at += p.byteLength) - p.byteLength);
  return { name: f.name, bytes };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The name the page shows and requests use: the model's own (general.name), else its weights file's. */
function modelId(opened: OpenedModel, files: readonly ModelFile[]): string {
  const named = opened.loaded.metadata.get("general.name");
  if (typeof named === "string" && named.trim()) return named.trim().replace(/^.*\//, "");
  const weights = files.find((f) => /\.(gguf|safetensors|bin)$/.test(f.name) && !/^tok(\d+|enizer)\.bin$/.test(f.name)) ?? files[0]!;
  return weights.name.replace(/\.(bin|gguf|safetensors)$/, "");
}

async function serve(files: readonly ModelFile[], onProgress: (p: LoadProgress) => void, t0: number): Promise<LoadedModelInfo> {
  if (!backend) throw new Error("start() a backend before loading a model");
  const opened = openModelFiles(files);
  // Count tensor reads: fromLoaded reads each weight once as it uploads it.
  const total = opened.loaded.tensors.size;
  let done = 0;
  const counted = new Map([...opened.loaded.tensors].map(([name, t]) => {
    const read = t.read.bind(t);
    return [name, { ...t, read: () => (onProgress({ phase: "upload", done: ++done, total }), read()) }] as const;
  }));
  const model = fromLoaded({ ...opened.loaded, tensors: counted }, backend);
  const id = modelId(opened, files);
  const c = opened.loaded.config;
  // A browser serves one person: a few sequences. The engine sizes the KV cache from the device (at
  // most a full context for each); a model whose one full-context request cannot fit is refused.
  const next = new Engine(
    [{ id, model, tokenizer: opened.tokenizer, stopTokenIds: opened.stopTokenIds, ...(opened.chatTemplate ? { chatTemplate: opened.chatTemplate } : {}) }],
    { maxNumSeqs: 4, maxNumBatchedTokens: 256 },
  );
  const health = await waitReady(next);
  if (health.status !== "ready") {
    await next.close();
    throw new Error(`the engine did not start: ${health.message ?? health.status}`);
  }
  // NOTE: the old engine is closed only now, so a model that fails to start leaves the page serving the last one.
  const old = engine;
  engine = next;
  await old?.close();
  let parameters = 0;
  for (const t of opened.loaded.tensors.values()) parameters += numel(t.shape);
  return {
    id, arch: c.arch, layers: c.nLayers, dim: c.dim, vocabSize: c.vocabSize, contextLength: c.maxSeqLen, parameters,
    loadMs: performance.now() - t0, files: files.map((f) => f.name),
  };
}

async function waitReady(e: Engine): Promise<EngineHealth> {
  for (;;) {
    const h = await e.health();
    if (h.status !== "loading") return h;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function current(): Engine {
  if (!engine) throw new EngineError({ code: "unavailable", message: "no model is loaded yet" });
  return engine;
}

/** Reads picked files into memory, reporting bytes read. */
async function readPicked(picked: readonly File[], onProgress: (p: LoadProgress) => void, t0: number): Promise<LoadedModelInfo> {
  const total = picked.reduce((a, f) => a + f.size, 0);
  let done = 0;
  const files: ModelFile[] = [];
  for (const f of picked) {
    files.push({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
    onProgress({ phase: "read", done: (done += f.size), total, file: f.name });
  }
  return serve(files, onProgress, t0);
}

/**
 * Runs a load with a progress reporter, and settles only once every report has reached the page.
 * NOTE: comlink calls a callback over the proxy's own port, so the load's reply could overtake its
 * last progress reports, which would then show a progress bar after the load had ended.
 */
async function delivered<T>(onProgress: (p: LoadProgress) => void, run: (report: (p: LoadProgress) => void) => Promise<T>): Promise<T> {
  const sent: unknown[] = [];
  try {
    return await run((p) => void sent.push(onProgress(p)));
  } finally {
    await Promise.allSettled(sent);
  }
}

const api: EngineWorkerApi = {
  start,
  async loadUrls(urls: readonly ModelUrl[], onProgress: (p: LoadProgress) => void) {
    const t0 = performance.now();
    return delivered(onProgress, async (report) => serve(await Promise.all(urls.map((u) => download(u, report))), report, t0));
  },
  async loadFiles(picked: readonly File[], onProgress: (p: LoadProgress) => void) {
    const t0 = performance.now();
    return delivered(onProgress, (report) => readPicked(picked, report, t0));
  },
  async generate(req: GenerateRequest, onChunk: (c: GenerateChunk) => void): Promise<GenerateResult> {
    // NOTE: registered before the first await, so an abort() that arrives right behind this call (the
    // messages are handled in order) reaches the request even before the engine has admitted it.
    const ctl = new AbortController();
    aborters.set(req.reqId, ctl);
    try {
      // NOTE: comlink delivers callbacks on the proxy's own port, so generate's reply could overtake the
      // last chunks: wait until every chunk is delivered before answering.
      const delivered: unknown[] = [];
      for await (const chunk of current().generate(req, ctl.signal)) delivered.push(onChunk(chunk));
      await Promise.all(delivered);
      return { ok: true };
    } catch (err) {
      const data = err instanceof EngineError ? err.toData() : { code: "internal" as const, message: (err as Error).message };
      return { ok: false, error: data };
    } finally {
      aborters.delete(req.reqId);
    }
  },
  async abort(reqId: string) {
    aborters.get(reqId)?.abort();
  },
  async models(): Promise<readonly ModelCard[]> {
    return engine ? engine.models() : [];
  },
  async health(): Promise<EngineHealth> {
    return engine ? engine.health() : { status: "loading", message: `no model loaded yet (${Math.round(performance.now() - started)} ms since start)` };
  },
  async stats(): Promise<EngineStats> {
    return engine ? engine.stats() : { running: 0, waiting: 0 };
  },
  async cpuPool() {
    return cpuPoolStats();
  },
  async simulateDeviceLoss(): Promise<boolean> {
    if (backend?.name !== "webgpu") return false;
    // NOTE: the backend keeps its GPUDevice private; destroying it is exactly what a driver reset does.
    (backend as unknown as { device: GPUDevice }).device.destroy();
    return true;
  },
};

Comlink.expose(api);
