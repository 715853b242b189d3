// svg_plot.ts: metric curves as an SVG file a person opens: axes with ticks and labels, one
// polyline per run, a legend, and a log scale for losses. Pure string building, no DOM, so the CLI
// and a browser page draw the same picture.

import type { Series } from "./run_store.js";

export interface PlotLine {
  readonly label: string;
  readonly points: Series;
}

export interface PlotOptions {
  /** The metric's name, for the y axis and the title. */
  readonly metric: string;
  readonly logY?: boolean;
  readonly width?: number;
  readonly height?: number;
  readonly title?: string;
}

/** Colours of successive runs (Tableau 10: distinct for most colour vision). */
const COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const MARGIN = { left: 72, right: 24, top: 40, bottom: 52 };

/** About `count` round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]. */
export function linearTicks(lo: number, hi: number, count = 6): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/**
 * Tick values for a log axis on [lo, hi] (lo > 0): powers of ten; 2 and 5 between them when the
 * data spans 2.5 decades or less, every integer multiple within one; linear ticks when fewer than two fall inside.
 */
export function logTicks(lo: number, hi: number): number[] {
  const [e0, e1] = [Math.floor(Math.log10(lo)), Math.ceil(Math.log10(hi))];
  const decades = Math.log10(hi / lo);
  const mults = decades <= 1 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : decades <= 2.5 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = e0; e <= e1; e++) for (const m of mults) ticks.push(Number((m * 10 ** e).toPrecision(12)));
  const inside = ticks.filter((t) => t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9));
  return inside.length >= 2 ? inside : linearTicks(lo, hi, 4).filter((t) => t > 0);
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
  return String(Number(v.toPrecision(4)));
}

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The SVG document for `lines` of one metric. Points that cannot be drawn (NaN, ≤ 0 on a log axis) are left out. */
export function plotSvg(lines: readonly PlotLine[], opts: PlotOptions): string {
  const width = opts.width ?? 800;
  const height = opts.height ?? 480;
  const logY = opts.logY ?? false;
  const usable = (v: number): boolean => Number.isFinite(v) && (!logY || v > 0);
  const drawn = lines.map((l) => ({ label: l.label, points: l.points.filter(([, v]) => usable(v)) }));
  const all = drawn.flatMap((l) => l.points);
  if (all.length === 0) throw new Error(`plot: no ${logY ? "positive finite" : "finite"} values of '${opts.metric}' to draw`);
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = logY ? [y0 / 2, y1 * 2] : [y0 - 1, y1 + 1];
  const xTicks = linearTicks(x0, x1);
  if (!logY) {
    // NOTE: a linear y axis ends on ticks, so the lowest loss sits on a labelled line rather than between.
    const t = linearTicks(y0, y1);
    const step = t.length > 1 ? t[1]! - t[0]! : 1;
    [y0, y1] = [Math.floor(y0 / step + 1e-9) * step, Math.ceil(y1 / step - 1e-9) * step];
  }
  const yTicks = logY ? logTicks(y0, y1) : linearTicks(y0, y1);
  // NOTE: the axes span the data and the outer ticks, so every tick and every point is inside.
  [x0, x1] = [Math.min(x0, xTicks[0]!), Math.max(x1, xTicks[xTicks.length - 1]!)];
  [y0, y1] = [Math.min(y0, yTicks[0]!), Math.max(y1, yTicks[yTicks.length - 1]!)];
  const [pl, pr, pt, pb] = [MARGIN.left, width - MARGIN.right, MARGIN.top, height - MARGIN.bottom];
  const ty = (v: number): number => (logY ? Math.log(v) : v);
  const sx = (x: number): number => pl + ((x - x0) / (x1 - x0)) * (pr - pl);
  const sy = (y: number): number => pb - ((ty(y) - ty(y0)) / (ty(y1) - ty(y0))) * (pb - pt);
  const r = (v: number): string => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title ?? `${opts.metric} by step`)}</text>`,
    `<rect class="plot-area" x="${pl}" y="${pt}" width="${pr - pl}" height="${pb - pt}" fill="none" stroke="#333"/>`,
  ];
  for (const t of xTicks) {
    out.push(`<line class="x-tick" x1="${r(sx(t))}" y1="${pt}" x2="${r(sx(t))}" y2="${pb + 5}" stroke="#ddd"/>`,
      `<text x="${r(sx(t))}" y="${pb + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of yTicks) {
    out.push(`<line class="y-tick" x1="${pl - 5}" y1="${r(sy(t))}" x2="${pr}" y2="${r(sy(t))}" stroke="#ddd"/>`,
      `<text x="${pl - 8}" y="${r(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<text x="${(pl + pr) / 2}" y="${height - 12}" text-anchor="middle">step</text>`,
    `<text transform="translate(16 ${(pt + pb) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.metric)}${logY ? " (log scale)" : ""}</text>`);
  out.push(`<rect class="legend" x="${pr - 178}" y="${pt + 4}" width="172" height="${drawn.length * 18 + 8}" fill="#fff" fill-opacity="0.85" stroke="#ccc"/>`);
  drawn.forEach((l, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const pts = l.points.map(([x, y]) => `${r(sx(x))},${r(sy(y))}`).join(" ");
    out.push(`<polyline class="curve" data-run="${esc(l.label)}" fill="none" stroke="${colour}" stroke-width="1.6" stroke-linejoin="round" points="${pts}"/>`);
    const ly = pt + 16 + i * 18;
    out.push(`<g class="legend-entry"><line x1="${pr - 170}" y1="${ly - 4}" x2="${pr - 146}" y2="${ly - 4}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${pr - 140}" y="${ly}">${esc(l.label)}</text></g>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
