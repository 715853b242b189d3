// admin.ts: the admin API of `kiln serve --admin`, over a ModelRegistry: GET /admin/models (names,
// routes, versions with state, KV budget and load time, weight cache), POST /admin/models (load a
// version while serving), DELETE /admin/models/{name}@{version} (drain, then unload), PUT
// /admin/models/{name}/route (canary share, roll forward, roll back), PUT /admin/models/{name}@{version}/kv
// (resize its KV cache while it serves: {"kvBlocks": N} or {"kvBytes": B}; kv_compaction.ts). Bodies are checked with zod;
// errors have OpenAI's shape (400 bad body, 404 unknown model or version, 409 conflict). Who may call
// it (API key, else loopback only) is server.ts's decision; isLoopback is here for it.

import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { ModelRegistry } from "../model_registry.js";
import { RegistryError, parseModelRef } from "../model_registry.js";
import { ApiError, badRequest, notFound } from "./errors.js";
import { readJsonBody, sendJson } from "./http_io.js";
import { parse } from "./protocol.js";

/** Admin bodies are small: 64 KiB. */
const MAX_BODY = 64 * 1024;

const loadSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  path: z.string().min(1),
  kvBlocks: z.number().int().min(1).optional(),
});

const kvSchema = z.object({
  kvBlocks: z.number().int().min(1).optional(),
  kvBytes: z.number().int().min(1).optional(),
}).strict();

const routeSchema = z.object({
  stable: z.string().min(1),
  canary: z.string().min(1).nullish(),
  canaryShare: z.number().min(0).max(1).optional(),
});

export interface AdminRoute {
  /** The route's name for metrics. */
  readonly label: string;
  readonly methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** True for 127.0.0.0/8 and ::1 (also as IPv4-mapped IPv6). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  return a === "::1" || /^127\.\d+\.\d+\.\d+$/.test(a);
}

function apiError(err: unknown): unknown {
  if (!(err instanceof RegistryError)) return err;
  const param = err.param ?? null;
  switch (err.kind) {
    case "not_found": return notFound(err.message, param, "model_not_found");
    case "conflict": return new ApiError(409, err.message, "invalid_request_error", param, "conflict");
    case "invalid": return badRequest(err.message, param);
    default: return assertNever(err.kind);
  }
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw badRequest(`'${part}' is not valid percent-encoding`);
  }
}

export class AdminApi {
  constructor(readonly registry: ModelRegistry) {}

  /** The admin route of a path (no trailing slash, no query), or undefined when it is not one. */
  match(path: string): AdminRoute | undefined {
    if (path === "/admin/models") {
      return { label: path, methods: ["GET", "POST"], handle: (q, s) => this.guard(() => (q.method === "POST" ? this.load(q, s) : this.list(s))) };
    }
    const m = /^\/admin\/models\/([^/]+)(\/route|\/kv)?$/.exec(path);
    if (!m) return undefined;
    const part = m[1]!;
    if (m[2] === "/kv") return { label: "/admin/models/{name}@{version}/kv", methods: ["PUT"], handle: (q, s) => this.guard(() => this.resizeKv(decode(part), q, s)) };
    if (m[2]) return { label: "/admin/models/{name}/route", methods: ["PUT"], handle: (q, s) => this.guard(() => this.setRoute(decode(part), q, s)) };
    return { label: "/admin/models/{name}@{version}", methods: ["DELETE"], handle: (_q, s) => this.guard(() => this.unload(decode(part), s)) };
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      throw apiError(err);
    }
  }

  private async list(res: ServerResponse): Promise<void> {
    sendJson(res, 200, this.registry.list());
  }

  private async load(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(loadSchema, await readJsonBody(req, MAX_BODY));
    sendJson(res, 201, await this.registry.load(body));
  }

  private async unload(ref: string, res: ServerResponse): Promise<void> {
    const { name, version } = parseModelRef(ref);
    const freed = await this.registry.unload(name, version);
    sendJson(res, 200, { ...freed, state: "unloaded" });
  }

  private async resizeKv(ref: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { name, version } = parseModelRef(ref);
    const body = parse(kvSchema, await readJsonBody(req, MAX_BODY));
    const size = body.kvBlocks !== undefined && body.kvBytes === undefined ? { kvBlocks: body.kvBlocks }
      : body.kvBytes !== undefined && body.kvBlocks === undefined ? { kvBytes: body.kvBytes } : undefined;
    if (!size) throw badRequest("give exactly one of kvBlocks (a block count) or kvBytes (a byte budget)", "kvBlocks");
    sendJson(res, 200, await this.registry.resizeKv(name, version, size));
  }

  private async setRoute(name: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(routeSchema, await readJsonBody(req, MAX_BODY));
    if (body.canary != null && body.canaryShare === undefined) throw badRequest("canaryShare is required with a canary (a number in [0, 1])", "canaryShare");
    const route = this.registry.setRoute(name, {
      stable: body.stable, canaryShare: body.canaryShare ?? 0, ...(body.canary == null ? {} : { canary: body.canary }),
    });
    sendJson(res, 200, { name, route });
  }
}

function assertNever(x: never): never {
  throw new Error(`admin: unknown registry error kind ${String(x)}`);
}
