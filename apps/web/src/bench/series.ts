// series.ts turns benchmark runs (this page's and loaded ones) into what the charts draw: one chart per
// op, and in it one line per (run, variant, dtype), x = work per run (flops or bytes), y = throughput.
// Plain data in, plain data out: chart.ts draws it, and nothing here touches the DOM.
import type { CaseOp, Unit } from "../../../../bench/lib/cases.js";
import type { KernelResults, Variant } from "../../../../bench/lib/results.js";

export interface Point {
  readonly x: number;
  readonly y: number;
  /** The case and its numbers, for the point's tooltip. */
  readonly label: string;
}

export interface Line {
  /** Index of the run in the page's list: decides the dash pattern. */
  readonly run: number;
  readonly runLabel: string;
  readonly variant: Variant;
  readonly dtype: string;
  /** Index of (variant, dtype) among all series of all runs: decides the colour, the same in every chart. */
  readonly series: number;
  /** Sorted by x. */
  readonly points: readonly Point[];
}

export interface OpChart {
  readonly op: CaseOp;
  readonly unit: Unit;
  readonly lines: readonly Line[];
}

/** What the legend says for a run: backend and machine tag (the parts of its file name). */
export const runLabel = (r: KernelResults): string => `${r.backend.name} ${r.machine.tag}`;

/** Runs in the page's order: its own and the loaded ones. */
export function chartsOf(runs: readonly KernelResults[]): OpChart[] {
  const seriesKeys: string[] = [];
  const charts = new Map<string, { op: CaseOp; unit: Unit; lines: Map<string, Line & { points: Point[] }> }>();
  runs.forEach((results, run) => {
    for (const c of results.cases) {
      // NOTE: log axes: a zero or broken row (e.g. from a hand-edited file) cannot be placed, so it is left out.
      if (!(c.work > 0 && c.throughput > 0 && Number.isFinite(c.work) && Number.isFinite(c.throughput))) continue;
      const chartKey = `${c.op}|${c.unit}`;
      let chart = charts.get(chartKey);
      if (!chart) charts.set(chartKey, (chart = { op: c.op, unit: c.unit, lines: new Map() }));
      const key = `${c.variant} ${c.dtype}`;
      if (!seriesKeys.includes(key)) seriesKeys.push(key);
      const lineKey = `${run}|${key}`;
      let line = chart.lines.get(lineKey);
      if (!line) {
        line = { run, runLabel: runLabel(results), variant: c.variant, dtype: c.dtype, series: seriesKeys.indexOf(key), points: [] };
        chart.lines.set(lineKey, line);
      }
      line.points.push({ x: c.work, y: c.throughput, label: `${c.name} ${c.dtype} ${c.variant}: ${c.throughput.toPrecision(3)} ${c.unit}, ${c.medianMs.toPrecision(3)} ms` });
    }
  });
  return [...charts.values()].map((ch) => ({
    op: ch.op,
    unit: ch.unit,
    lines: [...ch.lines.values()].map((l) => ({ ...l, points: [...l.points].sort((a, b) => a.x - b.x || a.y - b.y) })),
  }));
}
