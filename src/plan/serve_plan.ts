// serve_plan.ts: the serving planner: for a model, a GPU, a precision, a context length and traffic
// (requests/s, prompt and output lengths, TTFT and per-token targets), it sizes each tensor-parallel
// degree that fits in one node: KV tokens, max batch, decode step time (memory-bandwidth bound:
// weights + KV read per step), prefill time (compute bound), instances for throughput, concurrency
// and availability, and cost per million tokens; it picks the cheapest that meets the targets.
// KV sizing is auto_config.ts's (the numbers `kiln serve` would use).

import type { GpuSpec } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import { countParams, forwardFlopsPerToken, kvBytesPerToken, paramsRead, prefillFlops } from "./accounting.js";
import type { ServingAutoPlan } from "./auto_config.js";
import { MAX_NUM_SEQS, sizeServing } from "./auto_config.js";
import type { CommModel } from "./collectives.js";
import { allReduceTime, groupLink } from "./collectives.js";
import type { Precision } from "./precision.js";
import { computeFlops, precisionInfo } from "./precision.js";
import { PlanInputError, formatBytes, formatDollars, formatSeconds } from "./units.js";

/** Share of HBM bandwidth a decode step reaches (vLLM and TensorRT-LLM reach 70-85% on large models). */
export const DECODE_BANDWIDTH_EFFICIENCY = 0.8;
/** Share of dense peak prefill reaches (large GEMMs). */
export const PREFILL_COMPUTE_EFFICIENCY = 0.7;

export interface ServeRequest {
  readonly model: PlanModel;
  readonly gpu: GpuSpec;
  readonly precision: Precision;
  /** Most tokens of one request (the served context). */
  readonly contextLength: number;
  /** Traffic to size for; absent: one instance, and its capacity (requestsPerSecondPerInstance). */
  readonly requestsPerSecond?: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** Time to first token target, seconds. */
  readonly ttftTargetS?: number;
  /** Per output token target (inter-token latency), seconds. */
  readonly tpotTargetS?: number;
  /** Instances kept beyond what the traffic needs, for availability (default 1: N+1). */
  readonly spareInstances?: number;
  /** KV-cache element type apart from the weights' (fp8 or int8 KV: 1 byte); default the precision's. */
  readonly kvDtype?: KvDtype;
  /** Link efficiency and collective latency (default COMM_DEFAULTS: published NCCL figures). */
  readonly comm?: CommModel;
}

export const KV_DTYPES = ["fp16", "bf16", "fp8", "int8"] as const;
export type KvDtype = (typeof KV_DTYPES)[number];
const KV_BYTES: Readonly<Record<KvDtype, number>> = { fp16: 2, bf16: 2, fp8: 1, int8: 1 };

/** Bytes of one cached K or V element under the request's precision and KV dtype. */
export const kvElementBytes = (req: Pick<ServeRequest, "precision" | "kvDtype">): number => (req.kvDtype ? KV_BYTES[req.kvDtype] : precisionInfo(req.precision).kvBytes);

export interface ServeCandidate {
  readonly tp: number;
  readonly fits: boolean;
  /** Which constraint failed and by how much. */
  readonly failure?: string;
  readonly weightsBytesPerGpu: number;
  readonly kvTokens: number;
  readonly maxBatch: number;
  /** The pure bound at batch 1: bandwidth x tp / (bytes of the weights a token reads + the request's KV bytes). */
  readonly decodeBoundTokensPerS: number;
  /** A decode step at batch 1 and at maxBatch, with the efficiency and TP all-reduces. */
  readonly stepBatch1S: number;
  readonly stepMaxBatchS: number;
  /** Output tokens/s of one instance at maxBatch. */
  readonly decodeTokensPerS: number;
  readonly prefillS: number;
  readonly requestsPerSecondPerInstance: number;
  readonly instances: { readonly throughput: number; readonly concurrency: number; readonly spare: number; readonly total: number };
  readonly gpus: number;
  readonly costPerHour: number;
  /** Per million tokens served, prompt and output together; and per million output tokens. */
  readonly costPerMillionTokens: number;
  readonly costPerMillionOutputTokens: number;
  readonly auto?: ServingAutoPlan;
}

export interface ServePlan {
  readonly model: string;
  readonly gpu: string;
  readonly precision: Precision;
  readonly weightsBytes: number;
  readonly kvBytesPerToken: number;
  readonly candidates: readonly ServeCandidate[];
  readonly best?: ServeCandidate;
  readonly reasons: readonly string[];
  readonly failure?: string;
}

function tpDegrees(m: PlanModel, gpu: GpuSpec): number[] {
  const out: number[] = [];
  for (let t = 1; t <= gpu.gpusPerNode; t *= 2) if (m.nHeads % t === 0 && (m.nKvHeads % t === 0 || t % m.nKvHeads === 0)) out.push(t);
  return out;
}

function candidate(req: ServeRequest, tp: number): ServeCandidate {
  const { model: m, gpu } = req;
  const info = precisionInfo(req.precision);
  const peak = computeFlops(gpu, req.precision);
  const weights = countParams(m).total * info.weightBytes;
  const perSeq = req.promptTokens + req.outputTokens;
  const meanContext = req.promptTokens + req.outputTokens / 2;
  const kvBytes = kvElementBytes(req);
  const kvPerTokenGpu = (kvBytesPerToken(m, kvBytes) * Math.max(1, m.nKvHeads / tp)) / m.nKvHeads;
  const link = groupLink(gpu, 1, tp, req.comm);
  const allReduces = (tokens: number): number =>
    2 * m.nLayers * allReduceTime(tokens * m.dim * 2, tp, link);
  // NOTE: a decode step reads the weights its batch touches (an MoE batch reaches only some experts).
  const weightsRead = (tokens: number): number => paramsRead(m, tokens) * info.weightBytes;
  const step = (batch: number): number => {
    const memory = (weightsRead(batch) / tp + batch * meanContext * kvPerTokenGpu) / (gpu.memoryBytesPerS * DECODE_BANDWIDTH_EFFICIENCY);
    const compute = (batch * forwardFlopsPerToken(m, meanContext)) / tp / (peak * PREFILL_COMPUTE_EFFICIENCY);
    return Math.max(memory, compute) + allReduces(batch);
  };
  const prefillS = Math.max(prefillFlops(m, req.promptTokens) / tp / (peak * PREFILL_COMPUTE_EFFICIENCY), weightsRead(req.promptTokens) / tp / gpu.memoryBytesPerS) + allReduces(req.promptTokens);
  const decodeBoundTokensPerS = (gpu.memoryBytesPerS * tp) / (weightsRead(1) + perSeq * kvBytesPerToken(m, kvBytes));
  const sizing = sizeServing({
    config: m, deviceMemoryBytes: gpu.memoryBytes, kvBytesPerElement: kvBytes, weightsBytes: weights,
    maxModelLen: req.contextLength, tensorParallel: tp, expectedTokensPerSeq: perSeq,
  });
  const base = { tp, weightsBytesPerGpu: weights / tp, decodeBoundTokensPerS, stepBatch1S: step(1), prefillS };
  const empty = { kvTokens: 0, maxBatch: 0, stepMaxBatchS: NaN, decodeTokensPerS: 0, requestsPerSecondPerInstance: 0, instances: { throughput: 0, concurrency: 0, spare: 0, total: 0 }, gpus: 0, costPerHour: NaN, costPerMillionTokens: NaN, costPerMillionOutputTokens: NaN };
  const fail = (failure: string): ServeCandidate => ({ ...base, ...empty, ...(sizing.ok ? { kvTokens: sizing.plan.kvTokens, auto: sizing.plan } : {}), fits: false, failure });
  if (!sizing.ok) return fail(`memory: ${sizing.message} (${formatBytes(sizing.shortBytes)} short per GPU)`);
  if (req.ttftTargetS !== undefined && prefillS > req.ttftTargetS) {
    return fail(`TTFT: prefill of ${req.promptTokens} tokens takes ${formatSeconds(prefillS)}, ${formatSeconds(prefillS - req.ttftTargetS)} over the ${formatSeconds(req.ttftTargetS)} target`);
  }
  const kvBatch = Math.min(MAX_NUM_SEQS, Math.floor(sizing.plan.kvTokens / perSeq));
  let maxBatch = kvBatch;
  if (req.tpotTargetS !== undefined) {
    const target = req.tpotTargetS;
    if (step(1) > target) return fail(`per-token latency: a batch-1 decode step takes ${formatSeconds(step(1))}, ${formatSeconds(step(1) - target)} over the ${formatSeconds(target)} target`);
    let lo = 1;
    let hi = kvBatch;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (step(mid) <= target) lo = mid;
      else hi = mid - 1;
    }
    maxBatch = lo;
  }
  const stepMax = step(maxBatch);
  const busyPerRequest = prefillS + (req.outputTokens * stepMax) / maxBatch;
  const rpsPerInstance = 1 / busyPerRequest;
  const latency = prefillS + req.outputTokens * stepMax;
  // NOTE: without a request rate the plan is one instance at its capacity (no spare: nothing to size).
  const rps = req.requestsPerSecond;
  const throughput = rps === undefined ? 1 : Math.ceil(rps / rpsPerInstance);
  const concurrency = rps === undefined ? 1 : Math.ceil((rps * latency) / maxBatch);
  const spare = rps === undefined ? 0 : (req.spareInstances ?? 1);
  const total = Math.max(throughput, concurrency, 1) + spare;
  const costPerHour = total * tp * gpu.pricePerHour;
  const perHour = (rps ?? rpsPerInstance) * 3600;
  return {
    ...base, fits: true, kvTokens: sizing.plan.kvTokens, maxBatch, stepMaxBatchS: stepMax, decodeTokensPerS: maxBatch / stepMax,
    requestsPerSecondPerInstance: rpsPerInstance, instances: { throughput, concurrency, spare, total }, gpus: total * tp, costPerHour,
    costPerMillionTokens: (costPerHour / (perHour * perSeq)) * 1e6, costPerMillionOutputTokens: (costPerHour / (perHour * req.outputTokens)) * 1e6,
    auto: sizing.plan,
  };
}

export function planServe(req: ServeRequest): ServePlan {
  const { model: m, gpu } = req;
  for (const [k, v] of [["requests/s", req.requestsPerSecond ?? 1], ["prompt tokens", req.promptTokens], ["output tokens", req.outputTokens], ["context", req.contextLength]] as const) {
    if (!(v > 0)) throw new PlanInputError(`${k}: ${v} is not positive`);
  }
  if (req.contextLength > m.maxSeqLen) throw new PlanInputError(`--context ${req.contextLength} is longer than ${m.name}'s context of ${m.maxSeqLen} tokens`);
  if (req.promptTokens + req.outputTokens > req.contextLength) {
    throw new PlanInputError(`prompt ${req.promptTokens} + output ${req.outputTokens} tokens exceed the context of ${req.contextLength}`);
  }
  computeFlops(gpu, req.precision); // throws for fp8 on a GPU without fp8 tensor cores
  const info = precisionInfo(req.precision);
  const candidates = tpDegrees(m, gpu).map((tp) => candidate(req, tp));
  const fitting = candidates.filter((c) => c.fits);
  const base = { model: m.name, gpu: gpu.name, precision: req.precision, weightsBytes: countParams(m).total * info.weightBytes, kvBytesPerToken: kvBytesPerToken(m, kvElementBytes(req)), candidates };
  if (fitting.length === 0) {
    const largest = candidates[candidates.length - 1];
    return { ...base, reasons: [], failure: `no tensor-parallel degree up to ${largest?.tp ?? 1} (one ${gpu.name} node) works: ${largest?.failure ?? "no degree divides the heads"}` };
  }
  // NOTE: with traffic, the cheapest deployment per hour; without, the cheapest instance per token it can serve.
  const cost = (c: ServeCandidate) => (req.requestsPerSecond === undefined ? c.costPerMillionTokens : c.costPerHour);
  const best = fitting.reduce((a, c) => (cost(c) < cost(a) || (cost(c) === cost(a) && c.stepMaxBatchS < a.stepMaxBatchS) ? c : a));
  const reasons = [
    `tp=${best.tp}: ${formatBytes(best.weightsBytesPerGpu)} of weights per GPU leaves room for ${best.kvTokens} KV tokens, ${best.maxBatch} requests of ${req.promptTokens + req.outputTokens} tokens at once` +
      (req.tpotTargetS !== undefined && best.maxBatch < Math.min(MAX_NUM_SEQS, Math.floor(best.kvTokens / (req.promptTokens + req.outputTokens))) ? ` (batch limited by the ${formatSeconds(req.tpotTargetS)} per-token target)` : ""),
    `decode: ${formatSeconds(best.stepMaxBatchS)} per step at batch ${best.maxBatch}, ${best.decodeTokensPerS.toFixed(0)} output tokens/s per instance; prefill of ${req.promptTokens} tokens ${formatSeconds(best.prefillS)}`,
    req.requestsPerSecond === undefined
      ? `capacity: one instance (${best.gpus} GPUs) serves ${best.requestsPerSecondPerInstance.toFixed(2)} requests/s, ${best.decodeTokensPerS.toFixed(0)} output tokens/s at batch ${best.maxBatch} (no --rps: no instances sized for traffic)`
      : `instances: ${best.instances.throughput} for ${req.requestsPerSecond} requests/s (${best.requestsPerSecondPerInstance.toFixed(2)} each), ${best.instances.concurrency} for concurrency, +${best.instances.spare} spare = ${best.instances.total} (${best.gpus} GPUs)`,
  ];
  for (const c of candidates) {
    if (c === best) continue;
    reasons.push(!c.fits ? `tp=${c.tp} fails: ${c.failure}`
      : req.requestsPerSecond === undefined ? `tp=${c.tp} costs ${formatDollars(c.costPerMillionTokens)} per million tokens at capacity against ${formatDollars(best.costPerMillionTokens)}`
      : `tp=${c.tp} costs $${c.costPerHour.toFixed(2)}/h against $${best.costPerHour.toFixed(2)}/h`);
  }
  return { ...base, best, reasons };
}
