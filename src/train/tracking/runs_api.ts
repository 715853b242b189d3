// runs_api.ts: the runs page's tiny HTTP API over a RunStore, as a pure function of the request
// path: the runs with their metric names, one metric's series, and overlaid curves as SVG (the
// same picture `kiln runs plot` writes). The HTTP server around it is runs_server.ts.

import { UnknownRunError } from "./errors.js";
import type { RunStore } from "./run_store.js";
import { runsPageHtml } from "./runs_page.js";
import { plotSvg } from "./svg_plot.js";

export interface ApiResponse {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

const json = (status: number, value: unknown): ApiResponse => ({ status, type: "application/json", body: JSON.stringify(value) });
const error = (status: number, message: string): ApiResponse => json(status, { error: message });

/** Answer GET `url` (path and query) from `store`. */
export function runsApi(store: RunStore, url: string): ApiResponse {
  const u = new URL(url, "http://localhost");
  try {
    // NOTE: inside the try: a malformed escape (/%E0) throws URIError, which is a 400, not a crash.
    const parts = u.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts.length === 0) return { status: 200, type: "text/html; charset=utf-8", body: runsPageHtml() };
    if (parts[0] !== "api") return error(404, `no page ${u.pathname} (the runs page is /)`);
    if (parts.length === 2 && parts[1] === "runs") {
      return json(200, store.runs().map((r) => ({ id: r.id, name: r.name, status: r.status, backend: r.backend, created: r.created, metrics: store.metricKeys(r.id) })));
    }
    if (parts.length === 5 && parts[1] === "runs" && parts[3] === "metrics") {
      const run = store.find(parts[2]!);
      // NOTE: JSON has no NaN: a NaN step travels as null.
      return json(200, { run: run.id, key: parts[4], points: store.series(run.id, parts[4]!).map(([s, v]) => [s, Number.isFinite(v) ? v : null]) });
    }
    if (parts.length === 2 && parts[1] === "plot.svg") {
      const metric = u.searchParams.get("metric") ?? "loss";
      const runs = u.searchParams.getAll("run").map((q) => store.find(q));
      if (runs.length === 0) return error(400, "plot.svg: name at least one run (?run=ID&run=ID)");
      const lines = runs.map((r) => ({ label: r.name === r.id ? r.id : `${r.name} (${r.id})`, points: store.series(r.id, metric) }));
      return { status: 200, type: "image/svg+xml", body: plotSvg(lines, { metric, logY: u.searchParams.get("log") === "1" }) };
    }
    return error(404, `no API ${u.pathname} (there are /api/runs, /api/runs/RUN/metrics/KEY, /api/plot.svg)`);
  } catch (err) {
    if (err instanceof UnknownRunError) return error(404, err.message);
    return error(400, (err as Error).message);
  }
}
