// runs_server.ts: the HTTP server behind `kiln runs ui`: GET requests answered by runs_api.ts from
// one RunStore, on a local port. It owns the socket and nothing else.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { RunStore } from "./run_store.js";
import { runsApi } from "./runs_api.js";

export interface RunsServer {
  /** Base URL ending in "/". */
  readonly url: string;
  close(): Promise<void>;
}

/** Serve the runs page and its API for `store` on host:port (port 0: any free one). */
export function startRunsServer(store: RunStore, opts: { host?: string; port?: number } = {}): Promise<RunsServer> {
  const server = createServer((req, res) => {
    const r = req.method === "GET" || req.method === "HEAD"
      ? runsApi(store, req.url ?? "/")
      : { status: 405, type: "application/json", body: JSON.stringify({ error: `${req.method} not allowed: the runs page is read-only` }) };
    res.writeHead(r.status, { "content-type": r.type, "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : r.body);
  });
  const host = opts.host ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}
