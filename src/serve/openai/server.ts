// server.ts: the OpenAI-compatible HTTP server of `kiln serve`, on node:http, in front of any
// EngineClient: routes (POST /v1/completions, POST /v1/chat/completions, GET /v1/models[/id], GET
// /health, GET /metrics), API keys (Authorization: Bearer), the body size limit, 503 while the engine
// loads or the server drains, client disconnects aborting their requests, and graceful shutdown.
// With an AdminApi it also mounts /admin/* (admin.ts): behind the API key when keys are configured,
// else answered only on loopback connections.
// NOTE: node:http rather than a framework: six routes, and streaming plus abort-on-disconnect need the
// raw request/response objects anyway; nothing to gain from fastify's plugin and schema layers.
// Endpoint logic is endpoint.ts (+ completions.ts, chat.ts); bytes on the wire http_io.ts.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { EngineClient, ModelCard } from "../engine_client.js";
import type { AdminApi } from "./admin.js";
import { isLoopback } from "./admin.js";
import { chatEndpoint } from "./chat.js";
import { completionsEndpoint } from "./completions.js";
import type { EndpointSpec, StreamFields } from "./endpoint.js";
import { serveEndpoint } from "./endpoint.js";
import { ApiError, badRequest, internalError, notFound, unavailable } from "./errors.js";
import { readJsonBody, sendJson, sendText } from "./http_io.js";
import { NOT_BUILT_PAGE, sendStaticFile, staticFile } from "./static_files.js";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics_registry.js";
import { ServerMetrics } from "./server_metrics.js";
import type { Caller } from "./to_engine.js";

export interface ApiKey {
  readonly key: string;
  /** Whose key it is: the engine shares capacity fairly between tenants. */
  readonly tenant: string;
}

export interface OpenAIServerOptions {
  /** When given, /v1/* needs `Authorization: Bearer <key>` with one of them (/health and /metrics stay open). */
  readonly apiKeys?: readonly ApiKey[];
  /** Largest request body in bytes (413 above). Default 4 MiB. */
  readonly maxBodyBytes?: number;
  /** Retry-After seconds while the engine loads or the server drains. Default 1. */
  readonly retryAfterS?: number;
  /** Where unexpected errors (500s) are reported. Default console.error. */
  readonly log?: (line: string) => void;
  /** Mounts /admin/* (model management): needs an API key when keys are configured, else loopback only. */
  readonly admin?: AdminApi;
  /**
   * A built web app (apps/web/dist) served for GET/HEAD of any other path, `/` being its index.html.
   * When the folder does not exist, `/` says how to build it.
   */
  readonly staticDir?: string;
  /** Read-only pages mounted beside the API (the runs page: /runs, /api/runs), GET/HEAD, no API key. */
  readonly pages?: readonly PageRoutes[];
}

/** A mounted page and its API (e.g. train's runsRoutes): it claims paths and answers a URL with plain data. */
export interface PageRoutes {
  match(path: string): boolean;
  handle(url: string): { readonly status: number; readonly type: string; readonly body: string };
}

const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

/** `caller` is the API key's tenant (empty without keys or on routes without auth). */
type Handler = (req: IncomingMessage, res: ServerResponse, signal: AbortSignal, arrivalMs: number, caller: Caller) => Promise<void>;

interface Route {
  /** The allowed method; several (admin routes) as "GET, POST". */
  readonly method: string;
  readonly handler: Handler;
  /** Behind the API key check. */
  readonly auth: boolean;
  /** Refused (403) unless the connection comes from loopback. */
  readonly loopbackOnly?: boolean;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export class OpenAIServer {
  readonly server: Server;
  readonly metrics = new ServerMetrics();
  private draining = false;
  /** Requests being answered, with the controller that aborts each. */
  private readonly inflight = new Map<AbortController, Promise<void>>();
  private readonly keys: readonly { digest: Buffer; tenant: string }[] | undefined;
  private readonly maxBody: number;
  private readonly retryAfterS: number;
  private readonly log: (line: string) => void;
  private readonly routes: ReadonlyMap<string, Route>;
  private readonly admin: AdminApi | undefined;
  private readonly staticDir: string | undefined;
  private readonly pages: readonly PageRoutes[];

  constructor(readonly engine: EngineClient, opts: OpenAIServerOptions = {}) {
    this.keys = opts.apiKeys?.map((k) => {
      if (k.key === "") throw new Error(`OpenAIServer: the API key of tenant '${k.tenant}' is empty`);
      return { digest: digest(k.key), tenant: k.tenant };
    });
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.retryAfterS = opts.retryAfterS ?? 1;
    this.log = opts.log ?? ((line) => console.error(line));
    this.admin = opts.admin;
    this.staticDir = opts.staticDir;
    this.pages = opts.pages ?? [];
    this.routes = new Map<string, Route>([
      ["/v1/completions", { method: "POST", auth: true, handler: (q, s, sig, t, c) => this.generate(completionsEndpoint, q, s, sig, t, c) }],
      ["/v1/chat/completions", { method: "POST", auth: true, handler: (q, s, sig, t, c) => this.generate(chatEndpoint, q, s, sig, t, c) }],
      ["/v1/models", { method: "GET", auth: true, handler: (_q, s) => this.listModels(s) }],
      ["/health", { method: "GET", auth: false, handler: (_q, s) => this.health(s) }],
      ["/metrics", { method: "GET", auth: false, handler: (_q, s) => this.scrape(s) }],
    ]);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log(`kiln serve: ${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
        res.destroy();
      });
    });
  }

  /** Start listening (default 127.0.0.1:8080; port 0 picks a free one); resolves with the address. */
  listen(port = 8080, host = "127.0.0.1"): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: stop accepting connections, answer new requests on open ones with 503, let the
   * requests in flight finish for up to graceMs, abort the rest, then close every connection.
   */
  async close(graceMs = 30_000): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const all = () => Promise.all(this.inflight.values());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), graceMs)));
    if ((await Promise.race([all(), timeout])) === "timeout") {
      for (const ctl of this.inflight.keys()) ctl.abort();
      await all();
    }
    clearTimeout(timer);
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivalMs = performance.now();
    // NOTE: the API answers pages from any origin (a demo page on `vite preview`, a notebook), as
    // vLLM does by default; the API key, not the origin, is what guards it.
    if (req.headers.origin !== undefined) res.setHeader("Access-Control-Allow-Origin", "*");
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      res.writeHead(204, {
        "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": req.headers["access-control-request-headers"] ?? "authorization, content-type",
        "Access-Control-Max-Age": "600",
      }).end();
      return;
    }
    const { route, label } = this.resolve(req.url ?? "/", req.method ?? "GET");
    res.once("close", () => this.metrics.httpRequests.inc({ route: label, status: String(res.statusCode) }));
    const ctl = new AbortController();
    // NOTE: "close" before the response finished means the client went away: abort its generation.
    res.once("close", () => {
      if (!res.writableFinished) ctl.abort();
    });
    const work = this.dispatch(route, req, res, ctl.signal, arrivalMs);
    this.inflight.set(ctl, work);
    try {
      await work;
    } finally {
      this.inflight.delete(ctl);
    }
  }

  /** The route of a request URL, and its name for metrics ("other" when there is none). */
  private resolve(url: string, method: string): { route: Route | undefined; label: string } {
    const path = url.split("?")[0]!.replace(/\/+$/, "") || "/";
    const admin = this.admin?.match(path);
    if (admin) {
      const keyed = this.keys !== undefined;
      const allowed = admin.methods.includes(method) ? method : admin.methods.join(", ");
      return { route: { method: allowed, auth: keyed, loopbackOnly: !keyed, handler: (q, s) => admin.handle(q, s) }, label: admin.label };
    }
    if (path.startsWith("/v1/models/")) {
      const id = path.slice("/v1/models/".length);
      return { route: { method: "GET", auth: true, handler: (_q, res) => this.getModel(id, res) }, label: "/v1/models/{id}" };
    }
    const route = this.routes.get(path);
    if (route) return { route, label: path };
    const mounted = this.pages.find((p) => p.match(path));
    if (mounted) {
      const handler = async (q: IncomingMessage, s: ServerResponse) => {
        const r = mounted.handle(q.url ?? "/");
        s.writeHead(r.status, { "content-type": r.type, "cache-control": "no-store" }).end(q.method === "HEAD" ? undefined : r.body);
      };
      return { route: { method: "GET", auth: false, handler }, label: "page" };
    }
    const page = this.staticRoute(url, path);
    return page ? { route: page, label: "static" } : { route: undefined, label: "other" };
  }

  /** The web app's file for a path outside the API, when a static folder is configured. */
  private staticRoute(url: string, path: string): Route | undefined {
    const dir = this.staticDir;
    if (dir === undefined || path.startsWith("/v1/") || path.startsWith("/admin/")) return undefined;
    const file = staticFile(dir, url);
    const method = "GET";
    if (file) return { method, auth: false, handler: (q, s) => sendStaticFile(q, s, file) };
    if (path === "/") return { method, auth: false, handler: async (_q, s) => sendText(s, 200, NOT_BUILT_PAGE(dir), "text/html; charset=utf-8") };
    return undefined;
  }

  private async dispatch(route: Route | undefined, req: IncomingMessage, res: ServerResponse, signal: AbortSignal, arrivalMs: number): Promise<void> {
    try {
      if (!route) throw notFound(`no route ${req.method} ${req.url}`);
      if (req.method !== route.method && !(req.method === "HEAD" && route.method === "GET")) {
        throw new ApiError(405, `${req.method} is not allowed on ${req.url} (use ${route.method})`, "invalid_request_error", null, null, { Allow: route.method });
      }
      if (route.loopbackOnly && !isLoopback(req.socket.remoteAddress)) {
        throw new ApiError(403, `${req.url} is only served to loopback clients when no API keys are configured`, "invalid_request_error", null, "forbidden");
      }
      const caller = route.auth ? this.authenticate(req) : {};
      await route.handler(req, res, signal, arrivalMs, caller);
    } catch (err) {
      const api = err instanceof ApiError ? err : internalError(err);
      if (!(err instanceof ApiError)) this.log(`kiln serve: ${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, api.status, api.body(), { ...api.headers, ...(this.draining ? { Connection: "close" } : {}) });
    }
  }

  /** The caller's tenant; throws 401 when keys are configured and the request has none of them. */
  private authenticate(req: IncomingMessage): Caller {
    if (!this.keys) return {};
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    const fail = (message: string) => new ApiError(401, message, "invalid_request_error", null, "invalid_api_key", { "WWW-Authenticate": "Bearer" });
    if (!m) throw fail("no API key: send the header 'Authorization: Bearer <key>'");
    const d = digest(m[1]!.trim());
    // NOTE: compare digests in constant time, and look at every key, so timing says nothing about them.
    let tenant: string | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, d)) tenant ??= k.tenant;
    if (tenant === undefined) throw fail("the API key is not valid");
    return { tenant };
  }

  private async generate<R extends StreamFields>(
    spec: EndpointSpec<R>, req: IncomingMessage, res: ServerResponse, signal: AbortSignal, arrivalMs: number, caller: Caller,
  ): Promise<void> {
    if (this.draining) throw unavailable("the server is shutting down", this.retryAfterS);
    const health = await this.engine.health();
    if (health.status !== "ready") {
      throw unavailable(`the engine is ${health.status}${health.message ? `: ${health.message}` : ""}`, this.retryAfterS);
    }
    const body = await readJsonBody(req, this.maxBody);
    await serveEndpoint(spec, { engine: this.engine, metrics: this.metrics, res, signal, arrivalMs, endpoint: spec.name }, body, caller);
  }

  private async listModels(res: ServerResponse): Promise<void> {
    const cards = await this.engine.models();
    sendJson(res, 200, { object: "list", data: cards.map(modelBody) });
  }

  private async getModel(encodedId: string, res: ServerResponse): Promise<void> {
    let id: string;
    try {
      id = decodeURIComponent(encodedId);
    } catch {
      throw badRequest(`the model id '${encodedId}' is not valid percent-encoding`);
    }
    const card = (await this.engine.models()).find((c) => c.id === id);
    if (!card) throw notFound(`the model '${id}' does not exist`, "model", "model_not_found");
    sendJson(res, 200, modelBody(card));
  }

  private async health(res: ServerResponse): Promise<void> {
    const h = this.draining ? { status: "draining" as const } : await this.engine.health();
    const headers: Record<string, string> = h.status === "ready" ? {} : { "Retry-After": String(this.retryAfterS) };
    sendJson(res, h.status === "ready" ? 200 : 503, h, headers);
  }

  private async scrape(res: ServerResponse): Promise<void> {
    sendText(res, 200, this.metrics.render(await this.engine.stats()), PROMETHEUS_CONTENT_TYPE);
  }
}

const modelBody = (c: ModelCard) => ({ id: c.id, object: "model", created: c.created, owned_by: c.ownedBy, max_model_len: c.maxModelLen });
