// bench_page.ts: the kernel benchmark page. It runs the suite in a module Worker (bench_worker.ts, over
// comlink), streams each result into the table, draws the charts (chart.ts) for its own runs and for
// results JSON files loaded from other machines, and downloads a run as the same JSON the Node CLI writes.
// Tests drive it through window.kilnBench and the element ids in bench.html.
import * as Comlink from "comlink";
import type { CaseResult, KernelResults } from "../../../../bench/lib/results.js";
import { parseResults, resultsBaseName } from "../../../../bench/lib/results.js";
import type { BenchBackend, BenchRunOptions, BenchStarted, BenchWorkerApi } from "./bench_protocol.js";
import { renderChart } from "./chart.js";
import { renderTable } from "./results_table.js";
import { chartsOf, runLabel } from "./series.js";
import "./bench.css";

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`bench.html has no #${id}`);
  return e as T;
}

const ui = {
  form: byId<HTMLFormElement>("controls"),
  run: byId<HTMLButtonElement>("run"),
  backend: byId<HTMLSelectElement>("backend"),
  quick: byId<HTMLInputElement>("quick"),
  status: byId<HTMLElement>("status"),
  message: byId<HTMLElement>("message"),
  charts: byId<HTMLElement>("charts"),
  results: byId<HTMLTableElement>("results"),
  download: byId<HTMLButtonElement>("download"),
  loadJson: byId<HTMLInputElement>("load-json"),
};

const api = Comlink.wrap<BenchWorkerApi>(new Worker(new URL("./bench_worker.ts", import.meta.url), { type: "module" }));

/** Every run on the page, this page's and loaded ones, in the order they came. */
const runs: KernelResults[] = [];
/** The run in progress: its backend and the rows so far. */
let live: { started?: BenchStarted; cases: CaseResult[] } | undefined;
let lastOwn: KernelResults | undefined;

function showMessage(text: string): void {
  ui.message.textContent = text;
  ui.message.hidden = text === "";
}

function renderRows(): void {
  const liveRun = live ? [{ label: `${live.started?.backend.name ?? ""} (running)`.trim(), cases: live.cases }] : [];
  renderTable(ui.results, [...runs.map((r) => ({ label: runLabel(r), cases: r.cases })), ...liveRun]);
}

/** The table, and the charts of the finished and loaded runs (a run in progress is charted when it ends). */
function render(): void {
  renderRows();
  const charts = chartsOf(runs);
  if (charts.length === 0) return;
  ui.charts.replaceChildren(...charts.map(renderChart));
}

function progress(): string {
  const s = live?.started;
  if (!s) return "starting the backend…";
  const last = live!.cases.at(-1);
  const device = `${s.backend.device}${s.backend.software && s.backend.name !== "cpu" ? ", a software GPU" : ""}`;
  return `running on ${s.backend.name} (${device}), sizes ${s.profile}: ${live!.cases.length}/${s.expectedRows} results` +
    (last ? `, last ${last.name} ${last.dtype} ${last.variant}` : "");
}

async function run(opts: Partial<BenchRunOptions> = {}): Promise<KernelResults> {
  if (live) throw new Error("a benchmark run is already in progress");
  const backend: BenchBackend = opts.backend ?? (ui.backend.value as BenchBackend);
  if (backend !== "webgpu" && backend !== "cpu") throw new Error(`backend must be webgpu or cpu, got '${String(backend)}'`);
  const quick = opts.quick ?? ui.quick.checked;
  [ui.backend.value, ui.quick.checked] = [backend, quick];
  showMessage("");
  live = { cases: [] };
  ui.run.disabled = true;
  ui.status.textContent = progress();
  const t0 = performance.now();
  try {
    // NOTE: a callback after the run ended (it should not happen: the worker waits for them) is ignored.
    const onStarted = (s: BenchStarted) => {
      if (!live) return;
      live.started = s;
      if (s.fallbackReason) showMessage(`WebGPU could not start (${s.fallbackReason}); running on the cpu backend instead.`);
      ui.status.textContent = progress();
    };
    const onResult = (c: CaseResult) => {
      if (!live) return;
      live.cases.push(c);
      ui.status.textContent = progress();
      renderRows();
    };
    const results = await api.run({ backend, quick }, Comlink.proxy(onStarted), Comlink.proxy(onResult));
    runs.push(results);
    lastOwn = results;
    ui.download.disabled = false;
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const skipped = results.skipped.length ? `, ${results.skipped.length} skipped` : "";
    ui.status.textContent = `${results.cases.length} results on ${runLabel(results)} in ${secs} s${skipped}: done`;
    return results;
  } catch (err) {
    const text = (err as Error).message ?? String(err);
    ui.status.textContent = `error: ${text}`;
    showMessage(`The benchmark failed: ${text}`);
    throw err;
  } finally {
    live = undefined;
    ui.run.disabled = false;
    render();
  }
}

function download(): void {
  if (!lastOwn) return;
  const blob = new Blob([JSON.stringify(lastOwn, null, 2) + "\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${resultsBaseName(lastOwn)}.json`;
  a.click();
  // NOTE: revoke later: the download reads the URL after click() returns.
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Add results files as overlays; a bad file is reported by name and the others still load. */
async function load(files: readonly File[]): Promise<void> {
  showMessage("");
  const errors: string[] = [];
  for (const f of files) {
    try {
      runs.push(parseResults(await f.text(), f.name));
    } catch (err) {
      const text = (err as Error).message;
      errors.push(text.startsWith(`${f.name}:`) ? text : `${f.name}: not a results JSON (${text})`);
    }
  }
  showMessage(errors.join("\n"));
  render();
}

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  run().catch(() => undefined); // NOTE: run() already shows the error in #status and #message.
});
ui.download.addEventListener("click", download);
ui.loadJson.addEventListener("change", () => {
  const files = Array.from(ui.loadJson.files ?? []);
  ui.loadJson.value = ""; // so loading the same file again fires change again
  void load(files);
});

window.kilnBench = { run, results: () => [...runs] };

if (!("gpu" in navigator)) {
  ui.backend.value = "cpu";
  showMessage("WebGPU is not available in this browser (navigator.gpu is missing): the cpu backend is selected.");
}
const params = new URLSearchParams(location.search);
if (params.get("autorun") === "1") {
  const b = params.get("backend") ?? ui.backend.value;
  if (b === "webgpu" || b === "cpu") run({ backend: b, quick: true }).catch(() => undefined);
  else showMessage(`autorun: backend must be webgpu or cpu, got '${b}'`);
}
