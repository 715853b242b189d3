// runs_routes.ts: the runs page mounted in another HTTP server (`kiln serve`): the page at /runs and
// its API at /api/runs... and /api/plot.svg (runs_api.ts, as `kiln runs ui` serves them at / and /api),
// over a runs database opened at the first request, so a server starts whether or not any run exists
// yet, and a database made later is found. It knows nothing of the server it is mounted in: requests
// come in as a URL and go out as plain data ({ status, type, body }).

import type { ApiResponse } from "./runs_api.js";
import { runsApi } from "./runs_api.js";
import { RunStore } from "./run_store.js";

export interface RunsRoutes {
  /** Whether `path` (no query, no trailing slash) is the runs page's. */
  match(path: string): boolean;
  /** Answer GET `url` (path and query). */
  handle(url: string): ApiResponse;
  close(): void;
}

export function runsRoutes(dbFile: string): RunsRoutes {
  let store: RunStore | undefined;
  return {
    match: (path) => path === "/runs" || path.startsWith("/runs/") || path === "/api/runs" || path.startsWith("/api/runs/") || path === "/api/plot.svg",
    handle(url) {
      // NOTE: the page fetches "api/..." relative to itself: from /runs that is /api/..., from /runs/ it is /runs/api/...
      const inner = url.startsWith("/runs") ? url.slice("/runs".length) || "/" : url;
      try {
        store ??= RunStore.open(dbFile);
      } catch (err) {
        return { status: 404, type: "application/json", body: JSON.stringify({ error: `the runs page has no database: ${(err as Error).message.split("\n")[0]} (kiln serve --runs-db FILE)` }) };
      }
      return runsApi(store, inner.startsWith("/") ? inner : `/${inner}`);
    },
    close() {
      store?.close();
      store = undefined;
    },
  };
}
