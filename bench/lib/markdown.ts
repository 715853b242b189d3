// markdown.ts renders a kernel benchmark result (results.ts) as a markdown section: a heading naming
// the backend and machine, one table row per case and variant, the routine-vs-primitive and
// routine-vs-naive-JS ratios, and what was skipped. Pure function of the data: --from uses it too.

import type { CaseResult, KernelResults } from "./results.js";

/** Three significant digits, without exponent notation for the sizes seen here. */
export function fmt3(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a >= 0.01) return x.toFixed(3);
  return x === 0 ? "0" : x.toExponential(1);
}

const groupKey = (c: CaseResult) => `${c.name}|${c.dtype}`;

function primitiveOf(r: KernelResults): Map<string, CaseResult> {
  const m = new Map<string, CaseResult>();
  for (const c of r.cases) if (c.variant === "primitive") m.set(groupKey(c), c);
  return m;
}

function tableRow(c: CaseResult, prim: CaseResult | undefined): string {
  const speedup = prim && prim !== c ? `${fmt3(prim.medianMs / c.medianMs)}x` : "";
  const diff = c.maxAbsDiff === undefined ? "" : c.maxAbsDiff === 0 ? "0" : c.maxAbsDiff.toExponential(1);
  const cells = [
    c.name, c.dtype, c.variant, String(c.kernels), fmt3(c.medianMs), `${fmt3(c.minMs)}-${fmt3(c.maxMs)}`, String(c.reps),
    fmt3(c.firstMs), `${fmt3(c.throughput)} ${c.unit}${c.software ? " (sw)" : ""}`, speedup, diff,
  ];
  return `| ${cells.join(" | ")} |`;
}

/** One-line ratios: each routine against its primitive path, and the cpu routine against the JS loop. */
function summary(r: KernelResults): string[] {
  const prim = primitiveOf(r);
  const lines: string[] = [];
  const ratios = r.cases
    .filter((c) => c.variant === "routine" && prim.has(groupKey(c)))
    .map((c) => prim.get(groupKey(c))!.medianMs / c.medianMs);
  if (ratios.length > 0) {
    const sorted = [...ratios].sort((a, b) => a - b);
    lines.push(`- routine vs primitive path: ${fmt3(sorted[0]!)}x to ${fmt3(sorted[sorted.length - 1]!)}x faster (median time ratio, ${ratios.length} cases)`);
  }
  for (const naive of r.cases.filter((c) => c.variant === "naive-js")) {
    const routine = r.cases.find((c) => c.variant === "routine" && groupKey(c) === groupKey(naive));
    if (routine) {
      lines.push(`- ${naive.name} ${naive.dtype}: ${r.backend.name} routine ${fmt3(routine.throughput)} GFLOP/s vs plain JS triple loop ${fmt3(naive.throughput)} GFLOP/s: ${fmt3(naive.medianMs / routine.medianMs)}x`);
    }
  }
  return lines;
}

export function renderMarkdown(r: KernelResults): string {
  const m = r.machine;
  const details = Object.entries(r.backend.details).map(([k, v]) => `${k} ${v}`).join(", ");
  const software = r.cases.some((c) => c.software);
  const prim = primitiveOf(r);
  const out = [
    `### ${r.backend.name}: ${r.backend.device} (${m.tag})`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. ` +
      `Backend: ${r.backend.device}${details ? ` (${details})` : ""}. ` +
      `Run ${r.date.slice(0, 16).replace("T", " ")} UTC, sizes: ${r.profile}${r.quick ? ", quick (few runs: a smoke test, not a measurement)" : ""}.`,
    "",
    "| case | dtype | variant | kernels | median ms | min-max ms | runs | first ms | throughput | vs primitive | max abs diff |",
    "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ...r.cases.map((c) => tableRow(c, prim.get(groupKey(c)))),
    "",
    ...summary(r),
  ];
  if (software) {
    out.push("- (sw): a software GPU (SwiftShader runs the WGSL on the CPU). These rows check that the kernels run; they say nothing about GPU performance.");
  }
  for (const s of r.skipped) out.push(`- skipped: ${s.name} ${s.dtype} ${s.variant}: ${s.reason}`);
  return out.join("\n") + "\n";
}
