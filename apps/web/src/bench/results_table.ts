// results_table.ts fills the results table: one row per case and variant of every run on the page,
// the run in progress included, numbers as the markdown tables print them (fmt3).
import { fmt3 } from "../../../../bench/lib/markdown.js";
import type { CaseResult } from "../../../../bench/lib/results.js";

export interface TableRun {
  /** What the run column says: backend and machine tag, or "(running)". */
  readonly label: string;
  readonly cases: readonly CaseResult[];
}

function row(run: string, c: CaseResult): HTMLTableRowElement {
  const tr = document.createElement("tr");
  const diff = c.maxAbsDiff === undefined ? "" : c.maxAbsDiff === 0 ? "0" : c.maxAbsDiff.toExponential(1);
  const cells = [run, c.name, c.dtype, c.variant, fmt3(c.medianMs), `${fmt3(c.throughput)} ${c.unit}${c.software ? " (sw)" : ""}`, diff];
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (i >= 4) td.className = "num";
    tr.append(td);
  });
  tr.dataset.op = c.op;
  tr.dataset.throughput = String(c.throughput);
  return tr;
}

export function renderTable(table: HTMLTableElement, runs: readonly TableRun[]): void {
  const body = table.tBodies[0] ?? table.createTBody();
  body.replaceChildren(...runs.flatMap((r) => r.cases.map((c) => row(r.label, c))));
}
