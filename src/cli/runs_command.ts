// runs_command.ts: `kiln runs list|show|compare|plot`: the runs database read back for a person:
// a table of runs, one run in full, an A/B of two runs (config fields that differ, metrics and
// A−B), and metric curves as an SVG file. Every number comes from src/train's tracking layer.

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { RunInfo, RunStore as Store } from "../train/index.js";
import { DEFAULT_RUNS_DB, RunStore, alignedSteps, configDiff, plotSvg, startRunsServer, summarize, svgToPng } from "../train/index.js";
import type { Command } from "./command.js";
import { UsageError } from "./command.js";
import { formatPairs, formatTable } from "./table.js";

const HELP = `Usage: kiln runs list [--db FILE]
       kiln runs show RUN [--db FILE]
       kiln runs compare RUN_A RUN_B [--metric M] [--rows N] [--db FILE]
       kiln runs plot RUN... --out FILE.svg|FILE.png [--metric M] [--log] [--db FILE]
       kiln runs ui [--port N] [--host H] [--db FILE]

Training runs recorded in the runs database: config, seed, code version, backend, per-step metrics
(loss, eval_loss, lr, grad_norm, loss_scale, tokens_per_s, mfu, ...) and artifacts with checksums.
RUN is a run's id, a unique prefix of it, or its name (the newest run of that name).

list     every run: status, backend, steps, final loss
show     one run: its record, config, each metric's first, final and best value, its artifacts
compare  A/B: the config fields that differ, each metric's final and best values with A−B, and
         one metric (--metric, default loss) at up to --rows (default 10) steps both runs logged
plot     one metric of one or more runs as an SVG or PNG picture (one curve per run, overlaid;
         a PNG is drawn by a headless Chromium: KILN_CHROMIUM, else /usr/bin/chromium)
ui       serve a runs page (and its JSON API) that overlays the chosen runs' curves, until Ctrl-C

Options:
  --db FILE     the runs database (default: $KILN_RUNS_DB, else ${DEFAULT_RUNS_DB})
  --metric M    the metric to compare or plot (default loss)
  --rows N      (compare) most rows of the side-by-side steps table (default 10)
  --out FILE    (plot) the .svg or .png file to write
  --log         (plot) a logarithmic y axis
  --port N      (ui) the port to listen on (default 8090; 0 picks a free one)
  --host H      (ui) the address to listen on (default 127.0.0.1)
  -h, --help    show this help

Exit status: 0 on success, 1 when the database or a run cannot be read (the reason is printed),
2 on a usage error.`;

const OPTIONS = {
  db: { type: "string" }, metric: { type: "string" }, rows: { type: "string" }, out: { type: "string" },
  log: { type: "boolean" }, port: { type: "string" }, host: { type: "string" }, help: { type: "boolean", short: "h" },
} as const;

/** Numbers in a few significant digits; differences carry their sign. */
function num(v: number | undefined, signed = false): string {
  if (v === undefined) return "-";
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  const a = Math.abs(v);
  const text = a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  return signed && v >= 0 ? `+${text}` : text;
}

const diff = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? "-" : num(a - b, true));
const when = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
const label = (r: RunInfo): string => (r.name === r.id ? r.id : `${r.id} (${r.name})`);

function listRuns(store: Store): string {
  const runs = store.runs();
  if (runs.length === 0) return `no runs in ${store.file}`;
  return formatTable(["ID", "NAME", "STATUS", "BACKEND", "SEED", "STEPS", "LOSS", "CREATED", "CODE"], runs.map((r) => {
    const loss = store.series(r.id, "loss");
    const last = loss[loss.length - 1];
    return [r.id, r.name, r.status, r.backend, r.seed === null ? "-" : String(r.seed), last ? String(last[0]) : "-", num(last?.[1]), when(r.created), r.codeVersion];
  }));
}

function showRun(store: Store, r: RunInfo): string {
  const metrics = store.metricKeys(r.id).map((k) => {
    const s = store.series(r.id, k);
    const sum = summarize(k, s);
    return [k, String(s.length), num(s[0]?.[1]), num(sum.final?.[1]), sum.best ? `${num(sum.best[1])} @ ${sum.best[0]}` : "-"];
  });
  const artifacts = store.artifacts(r.id).map((a) => [a.kind, a.step === null ? "-" : String(a.step), String(a.bytes), a.sha256, a.path]);
  const sample = store.samples(r.id).at(-1);
  return [
    `run ${label(r)}`,
    formatPairs({ status: r.status, created: when(r.created), ended: r.ended === null ? "-" : when(r.ended), seed: r.seed === null ? "-" : String(r.seed),
      backend: r.backend, code: r.codeVersion }, 2),
    "",
    "config:",
    JSON.stringify(r.config, null, 2),
    "",
    metrics.length > 0 ? formatTable(["METRIC", "STEPS", "FIRST", "FINAL", "BEST"], metrics) : "no metrics logged",
    "",
    artifacts.length > 0 ? formatTable(["ARTIFACT", "STEP", "BYTES", "SHA256", "PATH"], artifacts) : "no artifacts",
    // NOTE: the newest sample only: it says what the model has learned; every sample is in the database.
    ...(sample ? ["", `sample at step ${sample.step}: ${JSON.stringify(sample.prompt + sample.text)}`] : []),
  ].join("\n");
}

function compareRuns(store: Store, a: RunInfo, b: RunInfo, metric: string, rows: number): string {
  const changes = configDiff(a.config, b.config);
  const keys = [...new Set([...store.metricKeys(a.id), ...store.metricKeys(b.id)])].sort();
  const metricRows = keys.map((k) => {
    const [sa, sb] = [summarize(k, store.series(a.id, k)), summarize(k, store.series(b.id, k))];
    return [k, num(sa.final?.[1]), num(sb.final?.[1]), diff(sa.final?.[1], sb.final?.[1]), num(sa.best?.[1]), num(sb.best?.[1]), diff(sa.best?.[1], sb.best?.[1])];
  });
  const steps = alignedSteps(store.series(a.id, metric), store.series(b.id, metric), rows);
  const fields = [["seed", a.seed, b.seed], ["backend", a.backend, b.backend], ["code", a.codeVersion, b.codeVersion]]
    .filter(([, x, y]) => x !== y).map(([k, x, y]) => [String(k), String(x), String(y)]);
  return [
    `A: ${label(a)}`,
    `B: ${label(b)}`,
    "",
    changes.length + fields.length > 0
      ? formatTable(["CONFIG", "A", "B"], [...changes.map((c) => [c.key, c.a ?? "(absent)", c.b ?? "(absent)"]), ...fields])
      : "config: identical",
    "",
    metricRows.length > 0 ? formatTable(["METRIC", "A FINAL", "B FINAL", "A−B", "A BEST", "B BEST", "A−B"], metricRows) : "no metrics logged",
    "",
    steps.length > 0
      ? `${metric} at matching steps:\n${formatTable(["STEP", "A", "B", "A−B"], steps.map(([s, x, y]) => [String(s), num(x), num(y), diff(x, y)]))}`
      : `${metric}: no step logged by both runs`,
  ].join("\n");
}

async function plotRuns(store: Store, runs: readonly RunInfo[], metric: string, logY: boolean, out: string): Promise<string> {
  const lines = runs.map((r) => ({ label: r.name === r.id ? r.id : `${r.name} (${r.id})`, points: store.series(r.id, metric) }));
  runs.forEach((r, i) => {
    if (lines[i]!.points.length === 0) throw new Error(`run ${label(r)} logged no '${metric}' (its metrics: ${store.metricKeys(r.id).join(", ") || "none"})`);
  });
  const [width, height] = [800, 480];
  const svg = plotSvg(lines, { metric, logY, width, height });
  if (out.toLowerCase().endsWith(".png")) await svgToPng(svg, out, width, height);
  else writeFileSync(out, svg);
  return `wrote ${resolve(out)}: ${metric} of ${runs.length} run${runs.length === 1 ? "" : "s"}`;
}

function parse(argv: readonly string[]): { values: { db?: string; metric?: string; rows?: string; out?: string; log?: boolean; port?: string; host?: string; help?: boolean }; positionals: string[] } {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`runs: ${(err as Error).message.split(". ")[0]!.replace(/\.$/, "")}`, runsCommand);
  }
}

const ARITY: Readonly<Record<string, [min: number, max: number, what: string]>> = {
  list: [0, 0, "no run"], show: [1, 1, "one RUN"], compare: [2, 2, "two runs, RUN_A RUN_B"], plot: [1, Infinity, "one or more runs"], ui: [0, 0, "no run"],
};

async function execute(sub: string, runArgs: readonly string[], v: ReturnType<typeof parse>["values"]): Promise<string> {
  const metric = v.metric ?? "loss";
  const rows = v.rows === undefined ? 10 : Number(v.rows);
  if (!Number.isInteger(rows) || rows < 2) throw new UsageError(`runs compare: --rows must be an integer >= 2, got '${v.rows}'`, runsCommand);
  if (sub === "plot" && !/\.(svg|png)$/i.test(v.out ?? "")) {
    throw new UsageError(`runs plot: --out must name an .svg or .png file, got ${v.out === undefined ? "none" : `'${v.out}'`}`, runsCommand);
  }
  const store = RunStore.open(v.db ?? process.env.KILN_RUNS_DB ?? DEFAULT_RUNS_DB);
  try {
    const runs = runArgs.map((q) => store.find(q));
    if (sub === "list") return listRuns(store);
    if (sub === "show") return showRun(store, runs[0]!);
    if (sub === "compare") return compareRuns(store, runs[0]!, runs[1]!, metric, rows);
    return await plotRuns(store, runs, metric, v.log ?? false, v.out!);
  } finally {
    store.close();
  }
}

/** `kiln runs ui`: serve the runs page until SIGINT or SIGTERM; resolves to the exit code. */
async function serveUi(v: ReturnType<typeof parse>["values"]): Promise<number> {
  const port = v.port === undefined ? 8090 : Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`runs ui: --port must be an integer 0..65535, got '${v.port}'`, runsCommand);
  const store = RunStore.open(v.db ?? process.env.KILN_RUNS_DB ?? DEFAULT_RUNS_DB);
  const server = await startRunsServer(store, { port, ...(v.host === undefined ? {} : { host: v.host }) });
  console.log(`kiln runs ui: ${store.file} at ${server.url} (Ctrl-C stops)`);
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await server.close();
  store.close();
  return 0;
}

export const runsCommand: Command = {
  name: "runs",
  summary: "list, show, compare and plot tracked training runs",
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(argv);
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    const [sub, ...runArgs] = positionals;
    if (sub === undefined) throw new UsageError("runs: no subcommand given (list, show, compare, plot)", runsCommand);
    const arity = ARITY[sub];
    if (!arity) throw new UsageError(`runs: unknown subcommand '${sub}' (list, show, compare, plot)`, runsCommand);
    if (runArgs.length < arity[0] || runArgs.length > arity[1]) {
      throw new UsageError(`runs ${sub}: takes ${arity[2]}, got ${runArgs.length === 0 ? "none" : runArgs.join(" ")}`, runsCommand);
    }
    try {
      if (sub === "ui") return await serveUi(values);
      console.log(await execute(sub, runArgs, values));
      return 0;
    } catch (err) {
      if (err instanceof UsageError || !(err instanceof Error)) throw err;
      // NOTE: a database, run, metric or output file that cannot be used: the message names it (errors.ts).
      console.error(`kiln: runs ${sub}: ${err.message}`);
      return 1;
    }
  },
};
