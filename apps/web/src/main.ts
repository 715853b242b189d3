// main.ts: the demo page (main thread). It starts the engine Worker, loads the bundled stories260K or
// files the person picks or drops, and streams a prompt's completion from either the in-page engine or
// a `kiln serve` server through the same EngineClient interface, showing tokens/s, the adapter and the
// backend. The Worker does the work; this file only wires the page. WebGPU missing or lost: the engine
// restarts on the cpu backend and the page says why.
import * as Comlink from "comlink";
import type { EngineClient, GenerateRequest, StreamedChunk } from "../../../src/web.js";
import modelUrl from "../../../models/stories260K/stories260K.bin?url";
import tokenizerUrl from "../../../models/stories260K/tok512.bin?url";
import { HttpEngineClient } from "./http_client.js";
import type { BackendChoice, BackendReport, DemoPageApi, EngineWorkerApi, GenerateOutcome, LoadedModelInfo, LoadProgress } from "./protocol.js";
import "./style.css";
import { WorkerEngineClient } from "./worker_client.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);

const params = new URLSearchParams(location.search);
const DEFAULT_MODEL = [{ name: "stories260K.bin", url: modelUrl }, { name: "tok512.bin", url: tokenizerUrl }];

let api: Comlink.Remote<EngineWorkerApi>;
let worker: Worker | undefined;
let local: WorkerEngineClient;
let backend: BackendReport | undefined;
let model: LoadedModelInfo | undefined;
let lastFiles: readonly File[] | undefined;
let running: AbortController | undefined;
/** Why the page is not on WebGPU (shown until an error replaces it, and again after the next success). */
let notice = "";
let seq = 0;

function say(text: string, kind: "info" | "error" = "info"): void {
  const m = $("message");
  m.hidden = text === "";
  m.textContent = text;
  m.className = kind;
}

/** The progress reports of the last load, in order (the page shows the latest). */
let progressLog: LoadProgress[] = [];

function showProgress(p: LoadProgress | undefined): void {
  $("progress-row").hidden = p === undefined;
  if (!p) return;
  progressLog.push(p);
  const bar = $<HTMLProgressElement>("progress");
  bar.max = Math.max(p.total, 1);
  bar.value = p.done;
  const what = p.phase === "upload" ? `uploading weights: tensor ${p.done} of ${p.total}` : `${p.phase === "download" ? "downloading" : "reading"} ${p.file ?? ""}: ${(p.done / 2 ** 20).toFixed(2)} of ${(p.total / 2 ** 20).toFixed(2)} MiB`;
  $("progress-text").textContent = what;
}

/** The cpu backend's threads, and why there is one only. */
function threadsText(b: BackendReport): string {
  const n = b.threads ?? 1;
  if (n > 1) return `${n} threads`;
  // NOTE: without cross-origin isolation a page has no SharedArrayBuffer, so no worker threads can share memory.
  if (!b.isolated) return "1 thread (the page is not cross-origin isolated: its server does not send COOP/COEP headers)";
  if (params.get("threads") === "1") return "1 thread (as asked: threads=1)";
  return `1 thread (the browser reports ${navigator.hardwareConcurrency} logical CPU${navigator.hardwareConcurrency === 1 ? "" : "s"})`;
}

/** `why`: the page's notice when this start is a fallback the page chose (e.g. after losing the adapter). */
async function startWorker(choice: BackendChoice, why?: string): Promise<void> {
  worker?.terminate();
  worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  worker.addEventListener("error", (e) => say(`the engine worker failed: ${e.message}`, "error"));
  api = Comlink.wrap<EngineWorkerApi>(worker);
  local = new WorkerEngineClient(api);
  backend = await api.start(choice, params.get("threads") ?? undefined);
  $("backend").textContent = backend.name + (backend.software ? " (software)" : "");
  $("adapter").textContent = backend.name === "webgpu" ? [backend.vendor, backend.architecture].filter(Boolean).join(" / ") + ` (${backend.device})` : `${backend.device}, ${threadsText(backend)}`;
  notice = why ?? (backend.fallbackReason ? `WebGPU is not in use: ${backend.fallbackReason}. The engine runs on the cpu backend in a Worker instead.` : "");
  say(notice);
}

async function load(how: () => Promise<LoadedModelInfo>): Promise<void> {
  $<HTMLButtonElement>("generate").disabled = true;
  progressLog = [];
  try {
    model = await how();
    $("model").textContent = `${model.id}: ${model.arch}, ${model.layers} layers, dim ${model.dim}, ${(model.parameters / 1e6).toFixed(2)}M parameters, context ${model.contextLength} (loaded in ${Math.round(model.loadMs)} ms)`;
    say(notice);
  } catch (err) {
    say(`Could not load the model: ${(err as Error).message}${model ? `\nStill serving ${model.id}.` : ""}`, "error");
  } finally {
    showProgress(undefined);
    $<HTMLButtonElement>("generate").disabled = model === undefined;
  }
}

const loadDefault = () => load(() => api.loadUrls(DEFAULT_MODEL, Comlink.proxy(showProgress)));
function loadFiles(files: readonly File[]): Promise<void> {
  if (files.length === 0) return Promise.resolve();
  lastFiles = files;
  return load(() => api.loadFiles(files, Comlink.proxy(showProgress)));
}

function target(): { client: EngineClient<StreamedChunk>; model: string } | undefined {
  const server = (document.querySelector('input[name="target"]:checked') as HTMLInputElement).value === "server";
  if (!server) return model && { client: local, model: model.id };
  return { client: new HttpEngineClient(input("server-url").value.replace(/\/+$/, "")), model: "" };
}

function numberOf(id: string): number | undefined {
  const v = input(id).value.trim();
  return v === "" ? undefined : Number(v);
}

/** Decode speed: tokens after the first over the time since the first (the first includes the prompt). */
function decodeRate(tokens: number, firstMs: number, startMs: number): number {
  const s = (performance.now() - (firstMs || startMs)) / 1000;
  return tokens > 1 && s > 0 ? (tokens - 1) / s : 0;
}

async function generate(): Promise<GenerateOutcome> {
  const t = target();
  if (!t) throw new Error("no model is loaded");
  const prompt = $<HTMLTextAreaElement>("prompt").value;
  const chat = (document.querySelector('input[name="mode"]:checked') as HTMLInputElement).value === "chat";
  let modelId = t.model;
  if (!modelId) modelId = (await t.client.models())[0]?.id ?? "";
  const seed = numberOf("seed");
  const req: GenerateRequest = {
    reqId: `page-${++seq}`,
    model: modelId,
    prompt: chat ? { kind: "chat", messages: [{ role: "user", content: prompt }] } : { kind: "text", text: prompt },
    sampling: { temperature: numberOf("temperature") ?? 0.8, topP: numberOf("top-p") ?? 1, ...(seed === undefined ? {} : { seed }) },
    maxTokens: numberOf("max-tokens") ?? 200,
  };
  const out = $("output");
  out.replaceChildren(Object.assign(document.createElement("span"), { className: "prompt", textContent: chat ? "" : prompt }));
  const text = document.createTextNode("");
  out.append(text);
  running = new AbortController();
  $<HTMLButtonElement>("generate").disabled = true;
  $<HTMLButtonElement>("stop").disabled = false;
  $("stats").textContent = "generating…";
  const t0 = performance.now();
  let first = 0;
  /** Counted from token ids; a server streams text without them, and only its last chunk's usage counts. */
  let tokens: number | undefined;
  let finishReason = "";
  try {
    for await (const c of t.client.generate(req, running.signal)) {
      if (c.textDelta) text.appendData(c.textDelta);
      // NOTE: without ids (a server), the first token is taken to be the first text.
      if (!first && (c.tokenIds ? c.tokenIds.length > 0 : c.textDelta !== "")) first = performance.now();
      if (c.tokenIds) tokens = (tokens ?? 0) + c.tokenIds.length;
      if (c.usage) tokens = c.usage.completionTokens;
      if (c.finishReason) finishReason = c.finishReason;
      $("stats").textContent = tokens === undefined ? `${text.data.length} characters…` : `${tokens} tokens · ${decodeRate(tokens, first, t0).toFixed(1)} tokens/s`;
    }
  } finally {
    running = undefined;
    $<HTMLButtonElement>("generate").disabled = false;
    $<HTMLButtonElement>("stop").disabled = true;
  }
  const outcome = { text: text.data, tokens, tokensPerSecond: decodeRate(tokens ?? 0, first, t0), ttftMs: first ? first - t0 : 0, finishReason };
  const where = t.client === local ? `${backend?.name} in this page` : input("server-url").value;
  const counted = tokens === undefined ? "tokens not counted (stopped before the server's usage)" : `${tokens} tokens · ${outcome.tokensPerSecond.toFixed(1)} tokens/s`;
  $("stats").textContent = `${counted} · first token ${Math.round(outcome.ttftMs)} ms · ${finishReason} · ${where}`;
  return outcome;
}

async function onGenerate(): Promise<void> {
  try {
    await generate();
  } catch (err) {
    const message = (err as Error).message;
    // The adapter was lost (driver reset, GPU removed): continue on the cpu backend.
    if (!(/device lost|device was lost/i.test(message) && backend?.name === "webgpu")) say(`Generation failed: ${message}`, "error");
    else {
      say(`The WebGPU adapter was lost (${message}). Restarting the engine on the cpu backend…`, "error");
      await startWorker("cpu", `The WebGPU adapter was lost (${message}). The engine now runs on the cpu backend in a Worker; reload the page to try WebGPU again.`);
      await (lastFiles ? loadFiles(lastFiles) : loadDefault());
    }
  }
}

async function serverUrlDefault(): Promise<string> {
  // NOTE: served by `kiln serve`, the API is on this origin; otherwise (vite preview) assume the default port.
  try {
    if ((await fetch("./v1/models", { method: "GET" })).ok) return new URL("./v1", location.href).href;
  } catch {
    // not served by kiln
  }
  return "http://127.0.0.1:8080/v1";
}

function wireControls(): void {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    void loadFiles(Array.from(e.dataTransfer?.files ?? []));
  });
  input("files").addEventListener("change", () => void loadFiles(Array.from(input("files").files ?? [])));
  $("load-default").addEventListener("click", () => void loadDefault());
  $("generate").addEventListener("click", () => void onGenerate());
  $("stop").addEventListener("click", () => running?.abort());
}

async function main(): Promise<void> {
  wireControls();
  input("server-url").value = await serverUrlDefault();
  const choice = (params.get("backend") ?? "auto") as BackendChoice;
  await startWorker(choice);
  await loadDefault();
}

const ready = main().catch((err: unknown) => say(`The engine did not start: ${(err as Error).message}`, "error"));
const demo: DemoPageApi = {
  ready, generate, loadFiles, backend: () => backend, model: () => model, lastLoadProgress: () => progressLog,
  stats: () => local.stats(),
  cpuPool: () => api.cpuPool(),
  generateFromButton: onGenerate,
  simulateDeviceLoss: () => api.simulateDeviceLoss(),
};
window.kilnDemo = demo;
