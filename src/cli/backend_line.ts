// backend_line.ts: the one line `kiln serve` and `kiln generate` print about their backend, in kiln's
// words: the backend and its device (and the cpu backend's thread count), and either who asked for it (--backend, KILN_BACKEND) or, when
// auto-selection chose it, why each better-ranked backend was not used. It chooses nothing itself
// (src/backends/index.ts does).

import type { BackendSelection } from "../index.js";

/** `askedBy`: the flag or variable that named the backend; undefined when it was "auto". */
export function backendLine(sel: BackendSelection, askedBy: string | undefined): string {
  // NOTE: the cpu backend's speed depends on its thread count (KILN_THREADS, --threads), so the line says it.
  const threads = sel.backend.name === "cpu" && sel.backend.info.details.threads ? `, ${sel.backend.info.details.threads} thread${sel.backend.info.details.threads === "1" ? "" : "s"}` : "";
  const head = `backend: ${sel.backend.name} (${sel.backend.info.device}${threads})`;
  if (askedBy !== undefined) return `${head}, as ${askedBy} asked`;
  if (sel.passedOver.length === 0) return `${head}, the best available`;
  return `${head}, chosen by auto; ${sel.passedOver.map((p) => `${p.name}: ${p.reason}`).join("; ")}`;
}

/** Who named the backend: the flag when given, else KILN_BACKEND when set (and not "auto"). */
export function backendAskedBy(flag: string | undefined): string | undefined {
  const named = (v: string | undefined) => v !== undefined && v !== "" && v !== "auto";
  if (flag !== undefined) return named(flag) ? `--backend ${flag}` : undefined;
  return named(process.env.KILN_BACKEND) ? `KILN_BACKEND=${process.env.KILN_BACKEND}` : undefined;
}
