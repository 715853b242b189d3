// chart.ts draws one op's chart as hand-written SVG: log-log axes with ticks and labels, one path per
// line (colour = variant and dtype, dash = run), a dot per case with its numbers as a tooltip, and an
// HTML legend under it. The scale helpers are pure; series.ts decides what the lines are.
import type { Line, OpChart } from "./series.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 560;
const H = 300;
const M = { left: 64, right: 16, top: 30, bottom: 46 };
// NOTE: colour-blind-safe (Okabe-Ito) colours for the series; dashes tell the runs apart.
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
const DASHES = ["", "7 4", "2 3", "9 3 2 3"];

export interface LogAxis {
  readonly lo: number; // domain, powers of ten around the data
  readonly hi: number;
  readonly ticks: readonly number[];
}

/** Whole decades around [min, max]; with few decades, 2x and 5x ticks too so the axis is not bare. */
export function logAxis(min: number, max: number): LogAxis {
  if (!(min > 0 && max >= min && Number.isFinite(max))) throw new Error(`logAxis: needs 0 < min <= max, got ${min}, ${max}`);
  const a = Math.floor(Math.log10(min));
  let b = Math.ceil(Math.log10(max));
  if (b === a) b = a + 1;
  const steps = b - a <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) for (const s of steps) if (e < b || s === 1) ticks.push(Number((s * 10 ** e).toPrecision(2)));
  return { lo: 10 ** a, hi: 10 ** b, ticks };
}

/** 2000000 -> "2M", 0.05 -> "0.05", 1e-5 -> "1e-5". */
export function formatTick(v: number): string {
  for (const [scale, suffix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]] as const) {
    if (v >= scale) return `${Number((v / scale).toPrecision(3))}${suffix}`;
  }
  return v >= 1e-3 ? String(Number(v.toPrecision(3))) : v.toExponential(0);
}

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const colourOf = (l: Line) => COLOURS[l.series % COLOURS.length]!;
const dashOf = (l: Line) => DASHES[l.run % DASHES.length]!;

function swatch(colour: string, dash: string): SVGSVGElement {
  const svg = el("svg", { width: 28, height: 10, viewBox: "0 0 28 10", "aria-hidden": "true" });
  svg.append(el("line", { x1: 1, y1: 5, x2: 27, y2: 5, stroke: colour, "stroke-width": 2, "stroke-dasharray": dash }));
  return svg;
}

/** Runs by dash (drawn in grey), then variants by colour (drawn solid): short entries that combine. */
function legend(chart: OpChart): HTMLElement {
  const ul = document.createElement("ul");
  ul.className = "legend";
  const item = (colour: string, dash: string, text: string, cls: string) => {
    const li = document.createElement("li");
    li.className = cls;
    li.append(swatch(colour, dash), ` ${text}`);
    ul.append(li);
  };
  const runs = new Map(chart.lines.map((l) => [l.run, l]));
  for (const l of [...runs.values()].sort((a, b) => a.run - b.run)) item("#555", dashOf(l), l.runLabel, "run");
  const series = new Map(chart.lines.map((l) => [l.series, l]));
  for (const l of [...series.values()].sort((a, b) => a.series - b.series)) item(colourOf(l), "", `${l.variant} ${l.dtype}`, "series");
  return ul;
}

/** A figure holding the chart's svg.chart and its legend. */
export function renderChart(chart: OpChart): HTMLElement {
  const xs = chart.lines.flatMap((l) => l.points.map((p) => p.x));
  const ys = chart.lines.flatMap((l) => l.points.map((p) => p.y));
  const xa = logAxis(Math.min(...xs), Math.max(...xs));
  const ya = logAxis(Math.min(...ys), Math.max(...ys));
  const [x0, x1, y0, y1] = [M.left, W - M.right, H - M.bottom, M.top];
  const sx = (v: number) => x0 + ((Math.log10(v) - Math.log10(xa.lo)) / (Math.log10(xa.hi) - Math.log10(xa.lo))) * (x1 - x0);
  const sy = (v: number) => y0 + ((Math.log10(v) - Math.log10(ya.lo)) / (Math.log10(ya.hi) - Math.log10(ya.lo))) * (y1 - y0);
  const r = (v: number) => v.toFixed(1);

  const svg = el("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "data-op": chart.op });
  svg.append(el("title", {}, `${chart.op}: throughput (${chart.unit}) against work per run`));
  svg.append(el("text", { x: x0, y: 18, class: "chart-title" }, `${chart.op} (${chart.unit})`));
  for (const t of xa.ticks) {
    svg.append(el("line", { x1: r(sx(t)), y1: y0, x2: r(sx(t)), y2: y1, class: "grid" }));
    svg.append(el("text", { x: r(sx(t)), y: y0 + 16, class: "tick", "text-anchor": "middle" }, formatTick(t)));
  }
  for (const t of ya.ticks) {
    svg.append(el("line", { x1: x0, y1: r(sy(t)), x2: x1, y2: r(sy(t)), class: "grid" }));
    svg.append(el("text", { x: x0 - 6, y: r(sy(t) + 4), class: "tick", "text-anchor": "end" }, formatTick(t)));
  }
  svg.append(el("rect", { x: x0, y: y1, width: x1 - x0, height: y0 - y1, class: "frame" }));
  const xLabel = chart.unit === "GFLOP/s" ? "flops per run (log scale)" : "bytes moved per run (log scale)";
  svg.append(el("text", { x: (x0 + x1) / 2, y: H - 8, class: "axis-label", "text-anchor": "middle" }, xLabel));
  svg.append(el("text", { x: 0, y: 0, class: "axis-label", "text-anchor": "middle", transform: `translate(16 ${(y0 + y1) / 2}) rotate(-90)` }, `${chart.unit} (log scale)`));

  for (const l of chart.lines) {
    const d = l.points.map((p, i) => `${i ? "L" : "M"}${r(sx(p.x))} ${r(sy(p.y))}`).join(" ");
    svg.append(el("path", { d, fill: "none", stroke: colourOf(l), "stroke-width": 2, "stroke-dasharray": dashOf(l), "data-run": l.run }));
    for (const p of l.points) {
      const dot = el("circle", { cx: r(sx(p.x)), cy: r(sy(p.y)), r: 3, fill: colourOf(l) });
      dot.append(el("title", {}, `${l.runLabel}: ${p.label}`));
      svg.append(dot);
    }
  }
  const fig = document.createElement("figure");
  fig.append(svg, legend(chart));
  return fig;
}
