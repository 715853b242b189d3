// plan_command.ts: `kiln plan train` and `kiln plan serve`: capacity plans as tables a person reads,
// or as JSON for tools. It owns the flags and the printing; every number comes from src/plan.

import type { ServePlan, TrainCandidate, TrainPlan } from "../plan/index.js";
import {
  GPU_NAMES, PRECISIONS, PlanInputError, countParams, describeLayout, findGpu, formatBytes, formatCount, formatDollars, formatFlops, formatInt,
  KV_DTYPES, commSensitivity, formatPercent, formatSeconds, knownModelsText, parseCount, parseLength, parsePositive, parsePrecision, planServe, planTraining, resolveModel,
} from "../plan/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";
import { formatTable } from "./table.js";
import { SERVE_OPTIONS, SERVE_FLAGS_HELP, serveExtrasFromFlags } from "./plan_serve_flags.js";
import { COMM_OPTIONS, FIXED_OPTIONS, PLAN_FLAGS_HELP, commFromFlags, emitLayoutYaml, fixedFromFlags, gpuWithPrice, parallelBlock, parseShare } from "./plan_flags.js";

const HELP = `Usage: kiln plan train --model M --gpu G --gpus N --tokens T [--target-days D] [--seq-len L] [--batch-tokens B]
                       [--tp N --pp N --dp N --ep N --zero S --mb N --recompute R --offload O] [--mfu X]
                       [--train-precision P] [--schedule S] [--cp N] [--no-sp] [--attention A] [--lora R [--qlora]]
                       [--sensitivity] [--emit layout] [--json]
       kiln plan serve --model M --gpu G [--precision P] [--kv-dtype D] [--context L] [--rps R] --prompt L --output L
                       [--ttft MS] [--tpot MS] [--spare N] [--prefix-hit R] [--spec-k K --spec-accept A --spec-draft-cost C]
                       [--service-scv S] [--json]

Plan a training run or a serving deployment from formulas and the model's real shape: memory per
GPU, parallelism, communication, time, instances and cost. See docs/planning.md for the formulas.

train: enumerate tensor/pipeline/data/expert parallel degrees, ZeRO 0-3, activation checkpointing,
       offload and microbatch sizes on N GPUs; keep the layouts that fit in memory, rank them by
       throughput and explain the choice (or say which constraint failed and by how much).
serve: for each tensor-parallel degree within one node: KV tokens that fit, max batch, decode
       step time (memory-bandwidth bound), prefill time, instances for the traffic, cost.

Options:
  --model M         a preset, a config.json, a Hugging Face folder or a GGUF file. Presets:
                    ${knownModelsText()}
  --gpu G           ${GPU_NAMES.join(", ")}, or a .json file with a custom GPU's fields
  --gpus N          (train) GPUs in the cluster
  --tokens T        (train) training tokens: 2T, 500B, 1.5e12
  --target-days D   (train) say whether the best layout finishes in D days, and, re-planned, the
                    fewest whole nodes of GPUs that would (or that none would)
  --seq-len L       (train) sequence length (default: the model's context, at most 8192)
  --batch-tokens B  (train) tokens per optimizer step (default 4M = 4194304)
  --precision P     (serve) ${PRECISIONS.join(", ")} (default bf16)
  --context L       (serve) most tokens of one request (default: the model's context, at most 8192)
  --rps R           (serve) requests per second (without it: one instance and its capacity)
  --kv-dtype D      (serve) KV cache type apart from the weights: fp16, bf16, fp8, int8 (default: the precision's)
  --prompt L        (serve) prompt tokens per request
  --output L        (serve) output tokens per request
  --ttft MS         (serve) time-to-first-token target, milliseconds
  --tpot MS         (serve) per-output-token target, milliseconds
  --spare N         (serve) instances beyond the traffic's need, for availability (default 1)
${SERVE_FLAGS_HELP}
${PLAN_FLAGS_HELP}
  --json            print the plan as JSON
  -h, --help        show this help

Lengths take a k suffix (8k = 8192); token budgets take K, M, B, T (decimal).
Exit status: 0 with a plan, 1 when nothing fits (the reason is printed), 2 on a usage error
(unknown model, GPU or precision included).

Examples:
  kiln plan train --model llama-70b --gpu h100 --gpus 1024 --tokens 2T --target-days 30
  kiln plan serve --model llama-8b --gpu h100 --precision fp8 --context 8192 --rps 10 --prompt 512 --output 256`;

/**
 * `--gpus -8` as `--gpus=-8`: node's parseArgs reads a value that starts with a dash as an option and
 * answers "argument is ambiguous"; joined, the value reaches kiln's own check ("not a positive number").
 */
function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith("--") && !a.includes("=") && next !== undefined && /^-[0-9.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

const n = (text: string | undefined, what: string, parse: (t: string, w: string) => number): number | undefined =>
  text === undefined ? undefined : parse(text, what);

function required<T>(v: T | undefined, flag: string): T {
  if (v === undefined) throw new PlanInputError(`missing ${flag}`);
  return v;
}

function layoutRow(c: TrainCandidate, i: number): string[] {
  return [String(i + 1), describeLayout(c.layout), formatBytes(c.memory.total), formatSeconds(c.step.stepSeconds), formatPercent(c.step.mfu),
    formatPercent(c.step.bubbleFraction), `${c.days.toFixed(1)}`, formatDollars(c.cost)];
}

function formatTrain(p: TrainPlan): string {
  const c = p.params;
  const lines = [
    `kiln plan train: ${p.model} on ${p.gpus} x ${p.gpu}, ${formatCount(p.tokens)} tokens, sequences of ${p.seqLen}, ${formatCount(p.batchTokens)} tokens per step`,
    "",
    formatTable(["COMPONENT", "PARAMETERS"], [
      ["embeddings", formatCount(c.embeddings)], ["attention", formatCount(c.attention)], ["mlp", formatCount(c.mlp)],
      ...(c.experts > 0 ? [["router", formatCount(c.router)], ["experts (routed)", formatCount(c.experts)]] : []),
      ["norms", formatCount(c.norms)], ["head", formatCount(c.head)], ["total", formatCount(c.total)], ["active per token", formatCount(c.active)],
    ]),
    `training compute: ${formatFlops(p.trainingFlops)} FLOPs (${p.best?.layout.lora ? "LoRA: 4N + 6 x adapters" : "6N"} + attention; N = ${formatCount(p.flopsParams)} non-embedding (matmul) parameters${c.experts > 0 ? " active per token" : ""}, of ${formatCount(c.total)} in all)`,
    "",
  ];
  const b = p.best;
  if (!b) return [...lines, `no plan: ${p.failure}`].join("\n");
  if (p.notes.length > 0) lines.push(...p.notes.map((x) => `note: ${x}`), "");
  const s = b.step;
  lines.push(
    `chosen: ${describeLayout(b.layout)} (${p.feasible} of ${p.considered} layouts fit)`,
    `  memory per GPU  ${formatBytes(b.memory.total)} of ${formatBytes(p.usableMemoryBytes)} usable: weights ${formatBytes(b.memory.weights)}, gradients ${formatBytes(b.memory.grads)}, optimizer ${formatBytes(b.memory.optimizer)}${b.memory.hostOptimizer > 0 ? ` (+${formatBytes(b.memory.hostOptimizer)} on the host)` : ""}, activations ${formatBytes(b.memory.activations)}`,
    `  step            ${formatSeconds(s.stepSeconds)}: compute ${formatSeconds(s.computeSeconds)}, pipeline bubble ${formatPercent(s.bubbleFraction)}, ${formatCount(s.tokensPerStep)} tokens`,
    `  MFU             ${formatPercent(s.mfu)}`,
    `  throughput      ${formatCount(b.tokensPerSecond)} tokens/s`,
    `  time            ${b.days.toFixed(1)} days${p.targetDays === undefined ? "" : ` (target ${p.targetDays} days: ${p.meetsTarget ? "met" : "MISSED"})`}`,
    `  GPU-hours       ${formatInt(b.gpuHours)}`,
    `  cost            ${formatDollars(b.cost)} at $${(b.cost / b.gpuHours).toFixed(2)}/GPU-hour, ${formatDollars(b.costPerMillionTokens)} per million tokens`,
    "",
  );
  if (s.comm.length > 0) {
    lines.push(formatTable(["COMMUNICATION", "LINK", "PER STEP", "EXPOSED", "SHARE OF STEP"],
      s.comm.map((x) => [x.kind, x.link, formatSeconds(x.seconds), formatSeconds(x.exposedSeconds), formatPercent(x.exposedSeconds / s.stepSeconds)])), "");
  }
  lines.push("why:", ...p.reasons.map((r) => `  - ${r}`), "");
  if (p.failure) lines.push(`${p.failure}`, "");
  lines.push(`top layouts:`, formatTable(["#", "LAYOUT", "MEM/GPU", "STEP", "MFU", "BUBBLE", "DAYS", "COST"], p.ranked.map(layoutRow)));
  return lines.join("\n");
}

function formatServe(p: ServePlan, header: string): string {
  const rows = p.candidates.map((c) => [
    c.pp > 1 ? `${c.tp} x pp ${c.pp}` : String(c.tp), formatBytes(c.weightsBytesPerGpu), c.fits || c.kvTokens > 0 ? formatInt(c.kvTokens) : "-", c.fits ? String(c.maxBatch) : "-",
    c.decodeBoundTokensPerS.toFixed(0), c.fits ? formatSeconds(c.stepMaxBatchS) : "-", c.fits ? c.decodeTokensPerS.toFixed(0) : "-",
    formatSeconds(c.prefillS), c.fits ? String(c.instances.total) : "-", c.fits ? String(c.gpus) : "-",
    c.fits ? formatDollars(c.costPerMillionTokens) : "-", c.fits ? (c === p.best ? "chosen" : "ok") : "fails",
  ]);
  const lines = [
    header,
    `weights ${formatBytes(p.weightsBytes)}, KV cache ${formatBytes(p.kvBytesPerToken)} per token`,
    "",
    formatTable(["TP", "WEIGHTS/GPU", "KV TOKENS", "MAX BATCH", "DECODE BOUND B=1 (TOK/S)", "STEP @MAX", "TOK/S/INST", "PREFILL", "INSTANCES", "GPUS", "$/M TOKENS", "STATUS"], rows),
    "",
  ];
  if (!p.best) return [...lines, `no plan: ${p.failure}`].join("\n");
  const b = p.best;
  lines.push(
    `chosen: tp=${b.tp}${b.pp > 1 ? ` x pp=${b.pp} (${b.pp} nodes)` : ""}, ${b.instances.total} instances (${b.gpus} GPUs), $${b.costPerHour.toFixed(2)}/hour, ${formatDollars(b.costPerMillionTokens)} per million tokens (${formatDollars(b.costPerMillionOutputTokens)} per million output tokens)`,
    "why:", ...p.reasons.map((r) => `  - ${r}`), "",
    `kiln serve --kv-cache auto --max-batch auto would use, per instance: ${b.auto!.summary}`,
  );
  return lines.join("\n");
}

function sensitivityText(req: Parameters<typeof commSensitivity>[0]): string {
  return formatTable(["LINK MODEL", "LAYOUT", "STEP", "MFU", "DAYS"], commSensitivity(req).map((r) =>
    r.best ? [r.scenario, describeLayout(r.best.layout), formatSeconds(r.best.step.stepSeconds), formatPercent(r.best.step.mfu), r.best.days.toFixed(1)] : [r.scenario, "nothing fits", "-", "-", "-"]));
}

function runTrain(argv: readonly string[]): { text: string; json: unknown; ok: boolean; asJson: boolean } {
  const { values: v } = parseCommandArgs(planCommand, argv, {
    model: { type: "string" }, gpu: { type: "string" }, gpus: { type: "string" }, tokens: { type: "string" },
    "target-days": { type: "string" }, "seq-len": { type: "string" }, "batch-tokens": { type: "string" }, json: { type: "boolean" },
    ...COMM_OPTIONS, ...FIXED_OPTIONS,
  });
  if (v.emit !== undefined && v.emit !== "layout") throw new PlanInputError(`--emit: '${v.emit}' is not 'layout' (the parallel: block of a kiln train config)`);
  const gpu = gpuWithPrice(findGpu(required(v.gpu, "--gpu")), v);
  const model = resolveModel(required(v.model, "--model"));
  const gpus = required(n(v.gpus, "--gpus", parsePositive), "--gpus");
  if (!Number.isInteger(gpus)) throw new PlanInputError(`--gpus: ${gpus} is not a whole number`);
  const targetDays = n(v["target-days"], "--target-days", parsePositive);
  const seqLen = n(v["seq-len"], "--seq-len", parseLength);
  const batchTokens = n(v["batch-tokens"], "--batch-tokens", parseCount);
  const comm = commFromFlags(v);
  const fixed = fixedFromFlags(v);
  const mfu = n(v.mfu, "--mfu", parseShare);
  const req = {
    model, gpu, gpus, tokens: required(n(v.tokens, "--tokens", parseCount), "--tokens"),
    ...(targetDays === undefined ? {} : { targetDays }), ...(seqLen === undefined ? {} : { seqLen }), ...(batchTokens === undefined ? {} : { batchTokens }),
    ...(comm ? { comm } : {}), ...(fixed ? { fixed } : {}), ...(mfu === undefined ? {} : { mfu }),
  };
  const plan = planTraining(req);
  if (v.emit === "layout") {
    return { text: plan.best ? emitLayoutYaml(plan) : `no plan: ${plan.failure}`, json: plan.best ? parallelBlock(plan.best) : { failure: plan.failure }, ok: plan.best !== undefined, asJson: v.json === true };
  }
  const text = formatTrain(plan) + (v.sensitivity === true ? `\n\nsensitivity to the link model (NCCL defaults: docs/planning.md):\n${sensitivityText(req)}` : "");
  return { text, json: plan, ok: plan.best !== undefined, asJson: v.json === true };
}

function runServe(argv: readonly string[]): { text: string; json: unknown; ok: boolean; asJson: boolean } {
  const { values: v } = parseCommandArgs(planCommand, argv, {
    model: { type: "string" }, gpu: { type: "string" }, precision: { type: "string" }, context: { type: "string" }, rps: { type: "string" },
    prompt: { type: "string" }, output: { type: "string" }, ttft: { type: "string" }, tpot: { type: "string" }, spare: { type: "string" }, json: { type: "boolean" },
    "kv-dtype": { type: "string" }, ...COMM_OPTIONS, ...SERVE_OPTIONS,
  });
  const kvDtype = v["kv-dtype"];
  if (kvDtype !== undefined && !(KV_DTYPES as readonly string[]).includes(kvDtype)) throw new PlanInputError(`--kv-dtype: '${kvDtype}' is not one of ${KV_DTYPES.join(", ")}`);
  const gpu = gpuWithPrice(findGpu(required(v.gpu, "--gpu")), v);
  const comm = commFromFlags(v);
  const model = resolveModel(required(v.model, "--model"));
  const precision = parsePrecision(v.precision ?? "bf16");
  const contextLength = n(v.context, "--context", parseLength) ?? Math.min(model.maxSeqLen, 8192);
  const ttft = n(v.ttft, "--ttft", parsePositive);
  const tpot = n(v.tpot, "--tpot", parsePositive);
  const spare = v.spare === undefined ? 1 : Number(v.spare);
  if (!(Number.isInteger(spare) && spare >= 0)) throw new PlanInputError(`--spare: '${v.spare}' is not a whole number >= 0`);
  const req = {
    model, gpu, precision, contextLength, spareInstances: spare,
    ...(v.rps === undefined ? {} : { requestsPerSecond: n(v.rps, "--rps", parsePositive)! }),
    ...(kvDtype === undefined ? {} : { kvDtype: kvDtype as (typeof KV_DTYPES)[number] }),
    promptTokens: required(n(v.prompt, "--prompt", parseLength), "--prompt"),
    outputTokens: required(n(v.output, "--output", parseLength), "--output"),
    ...(ttft === undefined ? {} : { ttftTargetS: ttft / 1000 }), ...(tpot === undefined ? {} : { tpotTargetS: tpot / 1000 }),
    ...(comm ? { comm } : {}), ...serveExtrasFromFlags(v),
  };
  const plan = planServe(req);
  const header = `kiln plan serve: ${model.name} (${formatCount(countParams(model).total)} parameters) on ${gpu.name}, ${precision}, context ${contextLength}; ` +
    `${req.requestsPerSecond === undefined ? "one instance's capacity for requests" : `${req.requestsPerSecond} requests/s`} of ${req.promptTokens} prompt + ${req.outputTokens} output tokens` +
    `${ttft === undefined ? "" : `, TTFT <= ${ttft} ms`}${tpot === undefined ? "" : `, <= ${tpot} ms per token`}`;
  return { text: formatServe(plan, header), json: plan, ok: plan.best !== undefined, asJson: v.json === true };
}

export const planCommand: Command = {
  name: "plan",
  summary: "plan training (parallelism, memory, time, cost) or serving (batch, instances, cost) for a model on a GPU type",
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === "-h" || sub === "--help" || rest.includes("-h") || rest.includes("--help")) {
      console.log(HELP);
      return 0;
    }
    if (sub !== "train" && sub !== "serve") throw new UsageError(`plan: expected 'train' or 'serve', got ${sub === undefined ? "nothing" : `'${sub}'`}`, this);
    let result: ReturnType<typeof runTrain>;
    try {
      const args = joinNegativeValues(rest);
      result = sub === "train" ? runTrain(args) : runServe(args);
    } catch (err) {
      if (err instanceof PlanInputError) throw new UsageError(`plan ${sub}: ${err.message}`, this);
      throw err;
    }
    console.log(result.asJson ? JSON.stringify(result.json, null, 2) : result.text);
    return result.ok ? 0 : 1;
  },
};
