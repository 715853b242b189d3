// model_registry.ts: the models an engine serves by name and version ("name@version" is the served
// id): loading a version while the others serve (weights through the weight cache, a KV budget of its
// own), unloading one (drain, then free its KV cache and weights), and each name's route (a stable
// version plus an optional canary with a share of the users, canary.ts). It is the engine's
// ModelRouter: a request for "name" goes to the version its route picks; "name@version" pins one.
// Resizing a version's KV cache while it serves (resizeKv) goes through here too.
// It owns versions, states, load times and routes; HTTP is openai/admin.ts, serving engine.ts.

import type { Backend } from "../index.js";
import { CachedDecoder, fromLoaded } from "../models/language_model.js";
import { Module } from "../nn/index.js";
import type { CanaryRoute } from "./canary.js";
import { pickVersion, routeProblem } from "./canary.js";
import type { Engine, ModelRouter } from "./engine.js";
import type { GenerateRequest } from "./engine_client.js";
import type { KvResizeReport } from "./kv_compaction.js";
import type { ServedModel } from "./served_model.js";
import type { WeightCache, WeightCacheStats } from "./weight_cache.js";

export type VersionState = "loading" | "ready" | "draining";

export interface VersionInfo {
  readonly name: string;
  readonly version: string;
  /** The served id: name@version. */
  readonly id: string;
  readonly path: string;
  state: VersionState;
  /** KV cache blocks of this version (its budget); undefined while loading without an explicit budget. */
  kvBlocks: number | undefined;
  /** Cold start: ms from the load call to ready (weights, backend upload, KV cache, warmup). */
  loadMs: number | undefined;
  /** Whether the weights came from the weight cache ("hit": a reload) or the file ("miss"). */
  weightCache: "hit" | "miss" | undefined;
}

export interface LoadSpec {
  readonly name: string;
  readonly version: string;
  /** A model file, folder or built-in name. */
  readonly path: string;
  readonly kvBlocks?: number;
}

export type RegistryErrorKind = "not_found" | "conflict" | "invalid";

/** A refused registry operation; admin.ts maps not_found to 404, conflict to 409, invalid to 400. */
export class RegistryError extends Error {
  constructor(readonly kind: RegistryErrorKind, message: string, readonly param?: string) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface ModelRegistryOptions {
  readonly engine: Engine;
  /** Where loaded models run. */
  readonly backend: Backend;
  readonly weights: WeightCache;
  /** Unloading aborts the version's requests still running after this many ms; default: wait for them. */
  readonly drainTimeoutMs?: number;
}

export interface NameListing {
  readonly name: string;
  readonly route: CanaryRoute | undefined;
  readonly versions: readonly VersionInfo[];
}

const PART = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** "name@version" split; RegistryError invalid when it is not one. */
export function parseModelRef(ref: string): { name: string; version: string } {
  const at = ref.lastIndexOf("@");
  const [name, version] = [ref.slice(0, at), ref.slice(at + 1)];
  if (at <= 0 || !PART.test(name) || !PART.test(version)) {
    throw new RegistryError("invalid", `'${ref}' is not NAME@VERSION (letters, digits and . _ : - in each part)`, "model");
  }
  return { name, version };
}

export class ModelRegistry implements ModelRouter {
  private readonly versions = new Map<string, VersionInfo>();
  private readonly served = new Map<string, ServedModel>();
  private readonly routes = new Map<string, CanaryRoute>();

  constructor(private readonly opts: ModelRegistryOptions) {
    opts.engine.setRouter(this);
  }

  route(req: GenerateRequest): string | undefined {
    const r = this.routes.get(req.model);
    // NOTE: without a user or tenant there is nothing to stick to: each request draws on its own.
    return r && `${req.model}@${pickVersion(req.model, r, req.user ?? req.tenant ?? req.reqId)}`;
  }

  aliases(): ReadonlyMap<string, string> {
    return new Map([...this.routes].map(([name, r]) => [name, `${name}@${r.stable}`]));
  }

  /** Every name with its route and versions (snapshots). */
  list(): { models: NameListing[]; weightCache: WeightCacheStats } {
    const names = new Map<string, VersionInfo[]>();
    for (const v of this.versions.values()) names.set(v.name, [...(names.get(v.name) ?? []), { ...v }]);
    const models = [...names].map(([name, versions]) => ({ name, route: this.routes.get(name), versions }));
    return { models, weightCache: this.opts.weights.stats() };
  }

  /** One version, or RegistryError not_found. */
  get(name: string, version: string): VersionInfo {
    const v = this.versions.get(`${name}@${version}`);
    if (!v) throw new RegistryError("not_found", `model '${name}@${version}' is not loaded${this.knownVersions(name)}`, "model");
    return v;
  }

  /** Load a version and serve it (the others keep serving); the first version of a name becomes its stable one. */
  async load(spec: LoadSpec): Promise<VersionInfo> {
    const { name, version } = parseModelRef(`${spec.name}@${spec.version}`);
    const id = `${name}@${version}`;
    const engine = this.opts.engine;
    if (this.versions.has(id)) throw new RegistryError("conflict", `model '${id}' is already loaded (${this.versions.get(id)!.state})`, "version");
    if (engine.core(name) || engine.core(id)) throw new RegistryError("conflict", `the engine already serves a model named '${engine.core(name) ? name : id}'`, "name");
    const v: VersionInfo = { name, version, id, path: spec.path, state: "loading", kvBlocks: spec.kvBlocks, loadMs: undefined, weightCache: undefined };
    this.versions.set(id, v);
    const t0 = performance.now();
    try {
      const { opened, hit } = await this.opts.weights.get(spec.path);
      const m: ServedModel = {
        id, model: fromLoaded(opened.loaded, this.opts.backend), tokenizer: opened.tokenizer, stopTokenIds: opened.stopTokenIds,
        ...(opened.chatTemplate === undefined ? {} : { chatTemplate: opened.chatTemplate }),
      };
      await engine.addModel(m, spec.kvBlocks === undefined ? {} : { numBlocks: spec.kvBlocks });
      this.served.set(id, m);
      v.weightCache = hit ? "hit" : "miss";
    } catch (err) {
      this.versions.delete(id);
      throw new RegistryError("invalid", `loading model '${id}' from '${spec.path}' failed: ${(err as Error).message}`, "path");
    }
    v.kvBlocks = engine.core(id)!.runner.numBlocks;
    v.loadMs = performance.now() - t0;
    v.state = "ready";
    if (!this.routes.has(name)) this.routes.set(name, { stable: version, canaryShare: 0 });
    return { ...v };
  }

  /**
   * Stop serving a version: drain its requests, then free its KV cache and weights. A version that its
   * name's route uses is refused (409) unless it is the name's only version, whose name then goes too.
   */
  async unload(name: string, version: string): Promise<VersionInfo> {
    const v = this.get(name, version);
    if (v.state !== "ready") throw new RegistryError("conflict", `model '${v.id}' is ${v.state}`, "model");
    const r = this.routes.get(name)!;
    if (r.canary === version) {
      throw new RegistryError("conflict", `model '${v.id}' is the canary of '${name}': roll back first (PUT /admin/models/${name}/route with {"stable": "${r.stable}"})`, "model");
    }
    const others = [...this.versions.values()].filter((o) => o.name === name && o !== v);
    if (r.stable === version && others.length > 0) {
      throw new RegistryError("conflict", `model '${v.id}' is the stable version of '${name}': route '${name}' to another version first (loaded: ${others.map((o) => o.version).join(", ")})`, "model");
    }
    if (others.length === 0) this.routes.delete(name);
    v.state = "draining";
    const drain = this.opts.drainTimeoutMs;
    await this.opts.engine.removeModel(v.id, drain === undefined ? {} : { abortAfterMs: drain });
    const m = this.served.get(v.id)!.model;
    this.served.delete(v.id);
    this.versions.delete(v.id);
    // NOTE: the registry built this model, so nobody else holds its weights: free them (GPU memory on webgpu).
    if (m instanceof CachedDecoder && m.model instanceof Module) for (const t of m.model.parameters().values()) t.dispose();
    return { ...v };
  }

  /**
   * Give a ready version kvBlocks KV blocks while it serves (between two of its steps: live blocks move
   * down, the cache's buffers are reallocated at the new size; kv_compaction.ts). Lowering it returns the
   * memory to the device for other versions to claim. The size is in blocks, or a byte budget (the
   * most whole blocks that fit in it). RegistryError invalid when the size does not fit.
   */
  async resizeKv(name: string, version: string, size: { readonly kvBlocks: number } | { readonly kvBytes: number }): Promise<VersionInfo & { resize: KvResizeReport }> {
    const v = this.get(name, version);
    if (v.state !== "ready") throw new RegistryError("conflict", `model '${v.id}' is ${v.state}`, "model");
    let kvBlocks: number;
    if ("kvBlocks" in size) kvBlocks = size.kvBlocks;
    else {
      const bytesPerBlock = this.opts.engine.core(v.id)!.runner.sizing.bytesPerBlock;
      kvBlocks = Math.floor(size.kvBytes / bytesPerBlock);
      if (!(kvBlocks >= 1)) throw new RegistryError("invalid", `kvBytes ${size.kvBytes} is less than one KV block of model '${v.id}' (${bytesPerBlock} bytes)`, "kvBytes");
    }
    let resize: KvResizeReport;
    try {
      resize = await this.opts.engine.resizeKv(v.id, kvBlocks);
    } catch (err) {
      throw new RegistryError("invalid", (err as Error).message, "kvBlocks");
    }
    v.kvBlocks = resize.numBlocks;
    return { ...v, resize };
  }

  /** Set a name's route: canary rollout, roll forward (the canary as stable), roll back (no canary). */
  setRoute(name: string, route: CanaryRoute): CanaryRoute {
    if (!this.routes.has(name)) throw new RegistryError("not_found", `no model named '${name}' is loaded`, "name");
    const problem = routeProblem(route);
    if (problem) throw new RegistryError("invalid", problem, "canaryShare");
    for (const [field, version] of [["stable", route.stable], ["canary", route.canary]] as const) {
      if (version === undefined) continue;
      const v = this.versions.get(`${name}@${version}`);
      if (!v) throw new RegistryError("not_found", `${field}: model '${name}@${version}' is not loaded${this.knownVersions(name)}`, field);
      if (v.state !== "ready") throw new RegistryError("conflict", `${field}: model '${v.id}' is ${v.state}`, field);
    }
    const r: CanaryRoute = { stable: route.stable, canaryShare: route.canary === undefined ? 0 : route.canaryShare, ...(route.canary === undefined ? {} : { canary: route.canary }) };
    this.routes.set(name, r);
    return r;
  }

  private knownVersions(name: string): string {
    const vs = [...this.versions.values()].filter((v) => v.name === name).map((v) => v.version);
    return vs.length ? ` (loaded versions of '${name}': ${vs.join(", ")})` : "";
  }
}
