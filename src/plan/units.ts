// units.ts: the planner's numbers as people write and read them: parsing "2T" tokens or "8k" context
// lengths from the command line, and printing bytes, counts, FLOPs, seconds and dollars with three
// significant digits. Decimal units (GB = 1e9 bytes) everywhere except where a length is parsed with
// a k suffix (8k = 8192 tokens, as context lengths are usually meant). No planning logic here.

/** A mistake in what the planner was asked (unknown name, bad number): the CLI reports it as a usage error. */
export class PlanInputError extends Error {}

const COUNT_SUFFIX: Readonly<Record<string, number>> = { k: 1e3, m: 1e6, b: 1e9, g: 1e9, t: 1e12 };

/** A count such as a token budget: "2T" = 2e12, "500B", "1.5e12", "4M" (decimal suffixes k, M, B/G, T). */
export function parseCount(text: string, what: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$/i.exec(text);
  const value = m ? Number(m[1]) * (m[2] ? COUNT_SUFFIX[m[2].toLowerCase()]! : 1) : NaN;
  if (!(Number.isFinite(value) && value > 0)) throw new PlanInputError(`${what}: '${text}' is not a positive count (examples: 2T, 500B, 4M, 1.5e12)`);
  return value;
}

/** A token length such as a context: "8192", "8k" = 8192, "128K" = 131072 (binary k). */
export function parseLength(text: string, what: string): number {
  const m = /^\s*([0-9]+)\s*(k?)\s*$/i.exec(text);
  const value = m ? Number(m[1]) * (m[2] ? 1024 : 1) : NaN;
  if (!(Number.isSafeInteger(value) && value > 0)) throw new PlanInputError(`${what}: '${text}' is not a positive whole number of tokens (examples: 512, 8192, 8k)`);
  return value;
}

/** A positive real number (rates, days, seconds). */
export function parsePositive(text: string, what: string): number {
  const value = Number(text);
  if (!(text.trim() !== "" && Number.isFinite(value) && value > 0)) throw new PlanInputError(`${what}: '${text}' is not a positive number`);
  return value;
}

function sig3(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function scaled(x: number, units: readonly [number, string][], base: string): string {
  if (x === 0) return base ? `0 ${base}` : "0";
  for (const [size, name] of units) if (Math.abs(x) >= size) return `${sig3(x / size)} ${name}`;
  return `${sig3(x)}${base ? ` ${base}` : ""}`;
}

/** 13.5 GB, 524 KB, 3.35 TB (decimal). */
export function formatBytes(n: number): string {
  return scaled(n, [[1e15, "PB"], [1e12, "TB"], [1e9, "GB"], [1e6, "MB"], [1e3, "KB"]], "B");
}

/** 6.74B, 128K, 2.00T: parameter and token counts. */
export function formatCount(n: number): string {
  return scaled(n, [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]], "").replace(" ", "");
}

/** 8.09e22 */
export function formatFlops(n: number): string {
  return n.toExponential(2).replace("e+", "e");
}

/** 12.3 ms, 4.10 s, 3.20 h, 12.4 days */
export function formatSeconds(s: number): string {
  if (s === 0) return "0";
  if (s < 1e-3) return `${sig3(s * 1e6)} us`;
  if (s < 1) return `${sig3(s * 1e3)} ms`;
  if (s < 3600) return `${sig3(s)} s`;
  if (s < 2 * 86400) return `${sig3(s / 3600)} h`;
  return `${sig3(s / 86400)} days`;
}

/** $1.23, $45.6K, $12.3M */
export function formatDollars(x: number): string {
  return `$${x < 1000 ? x.toFixed(2) : formatCount(x)}`;
}

/** 41.2% */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/** Whole numbers with thousands separators: 184,320 */
export function formatInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
