// serve_command.ts: `kiln serve`: load one or more models, start the continuous-batching engine on the
// chosen backend and the OpenAI-compatible HTTP server in front of it, print where to reach it, and
// drain in-flight requests on SIGINT/SIGTERM. It owns the flags and the start-up report; the engine,
// the server and the models live in src/serve and src/models.

import { existsSync } from "node:fs";
import { totalmem } from "node:os";
import { resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type { Backend, BackendName } from "../index.js";
import { BACKEND_NAMES, chooseBackend } from "../index.js";
import type { ModelConfig } from "../models/index.js";
import { fromLoaded, openModel } from "../models/index.js";
import type { ServingAutoPlan } from "../plan/index.js";
import { planServing } from "../plan/index.js";
import type { ApiKey, ServedModel } from "../serve/index.js";
import { AdminApi, Engine, ModelRegistry, OpenAIServer, WeightCache } from "../serve/index.js";
import { DEFAULT_RUNS_DB, runsRoutes } from "../train/index.js";
import { backendAskedBy, backendLine } from "./backend_line.js";
import type { Command } from "./command.js";
import { THREADS_HELP, THREADS_OPTION, UsageError, applyThreadsFlag, parseCommandArgs } from "./command.js";
import { DEFAULT_MODEL } from "./generate_command.js";
import { SERVE_EMIT_HELP, SERVE_EMIT_USAGE, asksForEmit, runServeEmit } from "./serve_emit.js";
import { SPECULATIVE_HELP, speculativeFromFlags } from "./serve_speculative.js";
import { runTpWorker, startTpRank0, tpWorkerRank } from "./serve_tp.js";

/** The built browser app (apps/web/dist: `npm run build:web`), served at /. */
const WEB_APP_DIR = fileURLToPath(new URL("../../apps/web/dist", import.meta.url));

const HELP = `Usage: kiln serve [--model M]... [options]
${SERVE_EMIT_USAGE}

Serve models over the OpenAI HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health,
/metrics) with continuous batching over a paged KV cache.

  --model M            a model file, folder or built-in name, optionally named: NAME=PATH, or versioned:
                       NAME@VERSION=PATH (requests for NAME go to its routed version; repeatable;
                       default ${DEFAULT_MODEL})
  --host H             address to listen on (default 127.0.0.1)
  --port P             port (default 8080; 0 picks a free one)
  --backend B          ${[...BACKEND_NAMES].reverse().join("|")}|auto (default: KILN_BACKEND, else auto)
  --threads N          ${THREADS_HELP}
  --kv-blocks N|auto   KV cache blocks per model (default: sized for --max-batch full-length requests)
  --block-size N       tokens per KV block (default 16)
  --max-batch N|auto   most requests running at once per model (default 64)
  --max-batched-tokens N|auto  token budget of one engine step (default 256)
                       auto: the capacity planner sizes it from the model and the device's memory
                       (kiln plan; printed at start)
  --prefill-first      run waiting prompts in a step of their own before the running decodes (shorter
                       time to first token under load, one extra short step per arrival)
  --tp N               tensor parallel: one engine over N ranks (local processes), each holding 1/N of
                       the model's weights; the same tokens as --tp 1 (default 1; one model, no auto)
${SPECULATIVE_HELP}
  --api-key KEY[:TENANT]  require this bearer key on /v1 (repeatable); TENANT shares capacity fairly
  --admin              serve the admin API (/admin/models: load, unload, canary routes); it needs an
                       API key when keys are given, else answers loopback clients only
  --weight-cache-mb N  host memory kept for reloading unloaded versions fast (default 1024)
  --runs-db FILE       the runs database the runs page (/runs) shows (default ${DEFAULT_RUNS_DB})
  -h, --help           show this help

Stops on SIGINT or SIGTERM after the requests in flight have finished (30 s at most).

${SERVE_EMIT_HELP}`;

const int = (flag: string, v: string | undefined, min: number): number | undefined => {
  if (v === undefined || v === "auto") return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`serve: ${flag} must be an integer >= ${min}, got '${v}'`, serveCommand);
  return n;
};

/** NAME=PATH or PATH (named after the file); a NAME with '@' is NAME@VERSION (model_registry.ts). */
function modelSpec(s: string): { name: string; path: string } {
  const eq = s.indexOf("=");
  if (eq > 0) return { name: s.slice(0, eq), path: s.slice(eq + 1) };
  const base = s.replace(/\/+$/, "").split("/").pop()!;
  return { name: base.replace(/\.(gguf|bin)$/, ""), path: s };
}

const optional = <K extends string>(key: K, v: number | undefined) => (v === undefined ? {} : { [key]: v } as Record<K, number>);

/**
 * The planner's sizing for the first model on this backend. NOTE: no backend reports its free memory;
 * on cpu the KV cache may take a quarter of RAM, and a WebGPU device is assumed to have 4x its
 * largest buffer. kiln plan serve explains the arithmetic.
 */
function autoPlan(m: ServedModel, config: ModelConfig, backend: Backend): ServingAutoPlan {
  const cpu = backend.name === "cpu";
  return planServing({
    config,
    deviceMemoryBytes: cpu ? totalmem() : backend.caps.maxBufferBytes * 4,
    memoryFraction: cpu ? 0.25 : 0.9,
    kvBytesPerElement: 4, // kiln uploads weights and caches in f32 by default
    maxBufferBytes: backend.caps.maxBufferBytes,
    maxModelLen: m.model.contextLength,
  });
}

export const serveCommand: Command = {
  name: "serve",
  summary: "serve models over the OpenAI HTTP API (continuous batching, paged KV cache)",
  help: HELP,
  async run(argv) {
    if (asksForEmit(argv)) return runServeEmit(serveCommand, argv);
    const { values } = parseCommandArgs(serveCommand, argv, {
      model: { type: "string", multiple: true },
      host: { type: "string" },
      port: { type: "string" },
      backend: { type: "string" },
      "kv-blocks": { type: "string" },
      "block-size": { type: "string" },
      "max-batch": { type: "string" },
      "max-batched-tokens": { type: "string" },
      "prefill-first": { type: "boolean" },
      "api-key": { type: "string", multiple: true },
      admin: { type: "boolean" },
      "weight-cache-mb": { type: "string" },
      "runs-db": { type: "string" },
      tp: { type: "string" },
      ...THREADS_OPTION,
      speculative: { type: "string" },
      "spec-k": { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    const backendName = values.backend ?? process.env.KILN_BACKEND ?? "auto";
    if (backendName !== "auto" && !BACKEND_NAMES.includes(backendName as BackendName)) {
      throw new UsageError(`serve: --backend must be one of ${BACKEND_NAMES.join(", ")} or auto, got '${backendName}'`, serveCommand);
    }
    applyThreadsFlag(serveCommand, values.threads);
    const port = int("--port", values.port, 0) ?? 8080;
    const host = values.host ?? "127.0.0.1";
    const numBlocks = int("--kv-blocks", values["kv-blocks"], 1);
    const blockSize = int("--block-size", values["block-size"], 1);
    const maxNumSeqs = int("--max-batch", values["max-batch"], 1);
    const maxNumBatchedTokens = int("--max-batched-tokens", values["max-batched-tokens"], 1);
    const apiKeys: ApiKey[] = (values["api-key"] ?? []).map((k) => {
      const [key, tenant] = k.split(":");
      if (!key) throw new UsageError("serve: --api-key must not be empty", serveCommand);
      return { key, tenant: tenant || key.slice(0, 8) };
    });
    const specs = (values.model ?? [DEFAULT_MODEL]).map(modelSpec);
    const cacheMb = int("--weight-cache-mb", values["weight-cache-mb"], 0) ?? 1024;
    // NOTE: NAME@VERSION models are loaded through the registry (after the engine starts), the others as before.
    const versioned = specs.filter((s) => s.name.includes("@"));
    const plain = specs.filter((s) => !s.name.includes("@"));

    const specK = int("--spec-k", values["spec-k"], 1);
    const tp = int("--tp", values.tp, 1) ?? 1;
    if (tp > 1 && values.speculative !== undefined) throw new UsageError("serve: --speculative with --tp is not supported yet", serveCommand);
    if (tp > 1 && (plain.length !== 1 || versioned.length || values.admin || (["kv-blocks", "max-batch", "max-batched-tokens"] as const).some((f) => values[f] === "auto"))) {
      throw new UsageError("serve: --tp serves one --model (no NAME@VERSION, no --admin, no auto sizing) so far", serveCommand);
    }
    const workerRank = tp > 1 ? tpWorkerRank() : undefined;

    const t0 = performance.now();
    const chosen = await chooseBackend(backendName as BackendName | "auto");
    const backend = chosen.backend;
    console.log(backendLine(chosen, backendAskedBy(values.backend)));
    const opened = plain.map(({ path }) => openModel(path));
    const runnerOpts = { ...optional("numBlocks", numBlocks), ...optional("blockSize", blockSize), ...optional("maxNumSeqs", maxNumSeqs) };
    if (workerRank !== undefined) return runTpWorker(workerRank, tp, opened[0]!.loaded, backend, runnerOpts);
    const tpRank0 = tp > 1 ? await startTpRank0(tp, argv) : undefined;
    const tpModel = tpRank0 ? await tpRank0.model(opened[0]!.loaded, backend) : undefined;
    const models: ServedModel[] = plain.map(({ name }, i) => {
      const o = opened[i]!;
      return {
        id: name,
        model: tpModel ?? fromLoaded(o.loaded, backend),
        tokenizer: o.tokenizer,
        stopTokenIds: o.stopTokenIds,
        ...(o.chatTemplate === undefined ? {} : { chatTemplate: o.chatTemplate }),
      };
    });
    const auto = (["kv-blocks", "max-batch", "max-batched-tokens"] as const).filter((f) => values[f] === "auto");
    if (auto.length && !models.length) throw new UsageError("serve: auto sizing needs a --model without @VERSION to size for", serveCommand);
    const plan = auto.length ? autoPlan(models[0]!, opened[0]!.loaded.config, backend) : undefined;
    if (plan) console.log(`auto (${auto.map((f) => `--${f}`).join(", ")}): ${plan.summary}`);
    const pick = (flag: (typeof auto)[number], given: number | undefined, planned: number | undefined) =>
      auto.includes(flag) ? planned : given;
    let speculative;
    try {
      speculative = speculativeFromFlags(values.speculative, specK, backend);
    } catch (err) {
      throw new UsageError((err as Error).message, serveCommand);
    }
    const engine = new Engine(models, {
      // Capture the decode step shapes before the first request, so clients never wait for a capture.
      warmup: true,
      ...optional("numBlocks", pick("kv-blocks", numBlocks, plan?.numBlocks)),
      ...optional("blockSize", blockSize),
      ...optional("maxNumSeqs", pick("max-batch", maxNumSeqs, plan?.maxNumSeqs)),
      ...optional("maxNumBatchedTokens", pick("max-batched-tokens", maxNumBatchedTokens, plan?.maxNumBatchedTokens)),
      ...(tpRank0 ? { onBatch: tpRank0.onBatch } : {}),
      ...(speculative ? { speculative } : {}),
      ...(values["prefill-first"] ? { prefillFirst: true } : {}),
    });
    await engine.ready();
    const registry = new ModelRegistry({ engine, backend, weights: new WeightCache({ maxBytes: cacheMb * 2 ** 20, open: (p) => openModel(p) }) });
    for (const s of versioned) {
      const at = s.name.lastIndexOf("@");
      const v = await registry.load({ name: s.name.slice(0, at), version: s.name.slice(at + 1), path: s.path, ...optional("kvBlocks", numBlocks) });
      console.log(`loaded ${v.id} in ${v.loadMs!.toFixed(0)} ms (${v.kvBlocks} KV blocks)`);
    }
    const runsDb = resolvePath(values["runs-db"] ?? DEFAULT_RUNS_DB);
    const runs = runsRoutes(runsDb);
    const server = new OpenAIServer(engine, {
      pages: [runs],
      ...(apiKeys.length ? { apiKeys } : {}),
      ...(values.admin ? { admin: new AdminApi(registry) } : {}),
      staticDir: WEB_APP_DIR,
    });
    const addr = await server.listen(port, host);
    const ms = performance.now() - t0;
    const url = `http://${addr.address.includes(":") ? `[${addr.address}]` : addr.address}:${addr.port}`;
    const first = specs[0]!.name.split("@")[0]!;
    const auth = apiKeys.length ? ` -H 'Authorization: Bearer ${apiKeys[0]!.key}'` : "";
    if (tpRank0) console.log(`tensor parallel: ${tp} ranks (local processes), each holding 1/${tp} of the weights`);
    if (speculative) console.log(`speculative decoding: ${values.speculative}, k up to ${speculative.maxK}`);
    console.log(`kiln serving ${specs.map((s) => s.name).join(", ")} on ${backend.name} (${backend.info.device}) at ${url}/v1`);
    console.log(`ready in ${(ms / 1000).toFixed(2)} s (process start to ready: ${(process.uptime()).toFixed(2)} s)`);
    console.log(existsSync(WEB_APP_DIR) ? `in a browser: ${url}/ (the model in your browser, or this server), ${url}/bench.html (kernel benchmark)` : `(the browser app is not built: npm run build:web, then open ${url}/)`);
    console.log(`training runs: ${url}/runs (${runsDb}${existsSync(runsDb) ? "" : ", not there yet"})`);
    if (values.admin) console.log(`admin API: ${url}/admin/models${apiKeys.length ? " (API key required)" : " (loopback clients only)"}`);
    console.log(`try:\n  curl ${url}/v1/completions -H 'Content-Type: application/json'${auth} \\\n    -d '{"model": "${first}", "prompt": "Once upon a time", "max_tokens": 64}'`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        console.error(`kiln: ${sig}: draining requests in flight, then stopping`);
        server.close().then(() => engine.close()).then(() => tpRank0?.close()).finally(() => runs.close()).then(resolve, resolve);
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
    return 0;
  },
};
