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
import { allReduceTime, groupLink, p2pTime } from "./collectives.js";
import type { QueueEstimate } from "./serve_queueing.js";
import { queueWait } from "./serve_queueing.js";
import type { SpecDecode } from "./spec_decode.js";
import { checkSpecDecode, expectedTokensPerStep, specTimePerToken } from "./spec_decode.js";
import type { Precision } from "./precision.js";
import { computeFlops, precisionInfo } from "./precision.js";
import { PlanInputError, formatBytes, formatDollars, formatPercent, formatSeconds } from "./units.js";

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
  /** Share of each prompt served from the prefix cache, in [0, 1): its prefill is skipped and its KV blocks shared. */
  readonly prefixHitRate?: number;
  /** Speculative decoding (spec_decode.ts). */
  readonly spec?: SpecDecode;
  /** Squared coefficient of variation of a request's service time for the M/G/c queue (default 1: M/M/c). */
  readonly serviceScv?: number;
}

/** The queue of a sized deployment: its wait, and TTFT at the 99th percentile (prefill + p99 wait). */
export interface ServeQueue extends QueueEstimate {
  readonly p99TtftS: number;
  /** Serving instances (without the spare) the queue ran over. */
  readonly instances: number;
}

export const KV_DTYPES = ["fp16", "bf16", "fp8", "int8"] as const;
export type KvDtype = (typeof KV_DTYPES)[number];
const KV_BYTES: Readonly<Record<KvDtype, number>> = { fp16: 2, bf16: 2, fp8: 1, int8: 1 };

/** Bytes of one cached K or V element under the request's precision and KV dtype. */
export const kvElementBytes = (req: Pick<ServeRequest, "precision" | "kvDtype">): number => (req.kvDtype ? KV_BYTES[req.kvDtype] : precisionInfo(req.precision).kvBytes);

export interface ServeCandidate {
  readonly tp: number;
  /** Pipeline stages, one node each (1: the instance is one tp group in a node). */
  readonly pp: number;
  readonly fits: boolean;
  /** Which constraint failed and by how much. */
  readonly failure?: string;
  readonly weightsBytesPerGpu: number;
  readonly kvTokens: number;
  readonly maxBatch: number;
  /** The pure bound at batch 1: bandwidth x tp / (bytes of the weights a token reads + the request's KV bytes). */
  readonly decodeBoundTokensPerS: number;
  /** Seconds per output token of a sequence at batch 1 and at maxBatch: a decode step with the efficiency, TP all-reduces and pipeline hops (speculative: per expected token). */
  readonly stepBatch1S: number;
  readonly stepMaxBatchS: number;
  /** Output tokens/s of one instance at maxBatch. */
  readonly decodeTokensPerS: number;
  readonly prefillS: number;
  readonly requestsPerSecondPerInstance: number;
  readonly instances: { readonly throughput: number; readonly concurrency: number; readonly queueing?: number; readonly spare: number; readonly total: number };
  readonly gpus: number;
  readonly costPerHour: number;
  /** Per million tokens served, prompt and output together; and per million output tokens. */
  readonly costPerMillionTokens: number;
  readonly costPerMillionOutputTokens: number;
  readonly auto?: ServingAutoPlan;
  /** With a request rate: the M/G/c queue's wait and p99 TTFT. */
  readonly queue?: ServeQueue;
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

/** Pipeline stages over nodes tried when no tensor-parallel degree within one node fits. */
export const PIPELINE_NODES = [2, 3, 4, 6, 8] as const;

function candidate(req: ServeRequest, tp: number, pp = 1): ServeCandidate {
  const { model: m, gpu } = req;
  const info = precisionInfo(req.precision);
  const peak = computeFlops(gpu, req.precision);
  const weights = countParams(m).total * info.weightBytes;
  const perSeq = req.promptTokens + req.outputTokens;
  const meanContext = req.promptTokens + req.outputTokens / 2;
  const kvBytes = kvElementBytes(req);
  // NOTE: pp stages over nodes split the layers (and their weights and KV) evenly; each stage is a tp group in one node.
  const stageLayers = Math.ceil(m.nLayers / pp);
  const layerShare = stageLayers / m.nLayers;
  const kvPerTokenGpu = (kvBytesPerToken(m, kvBytes) * layerShare * Math.max(1, m.nKvHeads / tp)) / m.nKvHeads;
  const link = groupLink(gpu, 1, tp, req.comm);
  const hopLink = groupLink(gpu, gpu.gpusPerNode, pp, req.comm);
  const allReduces = (tokens: number): number =>
    2 * stageLayers * allReduceTime(tokens * m.dim * 2, tp, link);
  // one stage's time, then the pipeline's: pp stages in turn and pp - 1 sends of the activations between nodes
  const hops = (tokens: number): number => (pp - 1) * p2pTime(tokens * m.dim * 2, hopLink);
  // NOTE: a decode step reads the weights its batch touches (an MoE batch reaches only some experts).
  const weightsRead = (tokens: number): number => paramsRead(m, tokens) * info.weightBytes;
  // `q` tokens a sequence: 1 for decode, k + 1 for a speculative verify step (same weights, q x the FLOPs)
  const stage = (batch: number, q = 1): number => {
    const memory = ((weightsRead(batch * q) * layerShare) / tp + batch * meanContext * kvPerTokenGpu) / (gpu.memoryBytesPerS * DECODE_BANDWIDTH_EFFICIENCY);
    const compute = (batch * q * forwardFlopsPerToken(m, meanContext) * layerShare) / tp / (peak * PREFILL_COMPUTE_EFFICIENCY);
    return Math.max(memory, compute) + allReduces(batch * q);
  };
  // NOTE: pipelined, the batch runs as pp microbatches in flight at once (one per stage), so a sequence's
  // next token comes after its microbatch of batch / pp has passed all pp stages.
  const step = (batch: number, q = 1): number => {
    const micro = Math.max(1, batch / pp);
    return pp * stage(micro, q) + hops(micro * q);
  };
  const spec = req.spec;
  // seconds per output token of one sequence at a batch (speculative: k draft steps and a verify step per expected tokens)
  const perToken = (batch: number): number => (spec ? specTimePerToken(spec, step(batch), step(batch, spec.k + 1)) : step(batch));
  // NOTE: a prefix-cache hit of `cached` prompt tokens skips their prefill: FLOPs of the prompt less those of the cached prefix.
  const cached = Math.floor((req.prefixHitRate ?? 0) * req.promptTokens);
  const newTokens = req.promptTokens - cached;
  const prefillWork = prefillFlops(m, req.promptTokens) - prefillFlops(m, cached);
  const prefillS = Math.max(prefillWork / tp / (peak * PREFILL_COMPUTE_EFFICIENCY), weightsRead(newTokens) / tp / gpu.memoryBytesPerS) + pp * allReduces(newTokens) + hops(newTokens);
  // (one stage works at a time at batch 1, so pipeline stages do not raise the bound)
  const decodeBoundTokensPerS = (gpu.memoryBytesPerS * tp) / (weightsRead(1) + perSeq * kvBytesPerToken(m, kvBytes));
  const sizing = sizeServing({
    config: pp === 1 ? m : { ...m, nLayers: stageLayers }, deviceMemoryBytes: gpu.memoryBytes, kvBytesPerElement: kvBytes, weightsBytes: weights * layerShare,
    maxModelLen: req.contextLength, tensorParallel: tp, expectedTokensPerSeq: perSeq,
  });
  const base = { tp, pp, weightsBytesPerGpu: (weights * layerShare) / tp, decodeBoundTokensPerS, stepBatch1S: perToken(1), prefillS };
  const empty = { kvTokens: 0, maxBatch: 0, stepMaxBatchS: NaN, decodeTokensPerS: 0, requestsPerSecondPerInstance: 0, instances: { throughput: 0, concurrency: 0, spare: 0, total: 0 }, gpus: 0, costPerHour: NaN, costPerMillionTokens: NaN, costPerMillionOutputTokens: NaN };
  const fail = (failure: string): ServeCandidate => ({ ...base, ...empty, ...(sizing.ok ? { kvTokens: sizing.plan.kvTokens, auto: sizing.plan } : {}), fits: false, failure });
  if (!sizing.ok) return fail(`memory: ${sizing.message} (${formatBytes(sizing.shortBytes)} short per GPU)`);
  if (req.ttftTargetS !== undefined && prefillS > req.ttftTargetS) {
    return fail(`TTFT: prefill of ${newTokens} tokens takes ${formatSeconds(prefillS)}, ${formatSeconds(prefillS - req.ttftTargetS)} over the ${formatSeconds(req.ttftTargetS)} target`);
  }
  // NOTE: the shared prefix's KV blocks are stored once and shared by every request that hits it.
  const kvBatch = Math.min(MAX_NUM_SEQS, Math.floor((sizing.plan.kvTokens - cached) / (perSeq - cached)));
  if (kvBatch < 1) return fail(`memory: ${sizing.plan.kvTokens} KV tokens per GPU hold no request of ${perSeq} tokens`);
  let maxBatch = kvBatch;
  if (req.tpotTargetS !== undefined) {
    const target = req.tpotTargetS;
    if (perToken(1) > target) return fail(`per-token latency: ${spec ? "at batch 1 a token takes" : "a batch-1 decode step takes"} ${formatSeconds(perToken(1))}, ${formatSeconds(perToken(1) - target)} over the ${formatSeconds(target)} target`);
    let lo = 1;
    let hi = kvBatch;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (perToken(mid) <= target) lo = mid;
      else hi = mid - 1;
    }
    maxBatch = lo;
  }
  const stepMax = perToken(maxBatch);
  const busyPerRequest = prefillS + (req.outputTokens * stepMax) / maxBatch;
  const rpsPerInstance = 1 / busyPerRequest;
  const latency = prefillS + req.outputTokens * stepMax;
  // NOTE: without a request rate the plan is one instance at its capacity (no spare: nothing to size).
  const rps = req.requestsPerSecond;
  const throughput = rps === undefined ? 1 : Math.ceil(rps / rpsPerInstance);
  const concurrency = rps === undefined ? 1 : Math.ceil((rps * latency) / maxBatch);
  const spare = rps === undefined ? 0 : (req.spareInstances ?? 1);
  let serving = Math.max(throughput, concurrency, 1);
  let queue: ServeQueue | undefined;
  if (rps !== undefined) {
    // M/G/c: every batch slot of the serving instances is a server holding a request for maxBatch x its busy time.
    const wait = (n: number): QueueEstimate | undefined => (rps * busyPerRequest < n ? queueWait({ arrivalsPerS: rps, servers: n * maxBatch, serviceS: maxBatch * busyPerRequest, serviceScv: req.serviceScv ?? 1 }) : undefined);
    let q = wait(serving);
    const meets = (x: QueueEstimate | undefined) => x !== undefined && (req.ttftTargetS === undefined || prefillS + x.p99WaitS <= req.ttftTargetS);
    // NOTE: add instances until the p99 TTFT meets the target; the wait falls to 0 once under 1% of arrivals wait.
    while (!meets(q) && serving < 2 * Math.max(throughput, concurrency) + 8) q = wait(++serving);
    if (!meets(q)) return fail(`queueing: no instance count up to ${serving} brings the p99 TTFT under the ${formatSeconds(req.ttftTargetS!)} target`);
    queue = { ...q!, p99TtftS: prefillS + q!.p99WaitS, instances: serving };
  }
  const total = serving + spare;
  const costPerHour = total * tp * pp * gpu.pricePerHour;
  const perHour = (rps ?? rpsPerInstance) * 3600;
  return {
    ...base, fits: true, kvTokens: sizing.plan.kvTokens, maxBatch, stepMaxBatchS: stepMax, decodeTokensPerS: maxBatch / stepMax,
    requestsPerSecondPerInstance: rpsPerInstance,
    instances: { throughput, concurrency, ...(queue ? { queueing: serving - Math.max(throughput, concurrency, 1) } : {}), spare, total }, gpus: total * tp * pp, costPerHour,
    costPerMillionTokens: (costPerHour / (perHour * perSeq)) * 1e6, costPerMillionOutputTokens: (costPerHour / (perHour * req.outputTokens)) * 1e6,
    auto: sizing.plan, ...(queue ? { queue } : {}),
  };
}

const shape = (c: ServeCandidate): string => (c.pp > 1 ? `tp=${c.tp} x pp=${c.pp} (${c.pp} nodes)` : `tp=${c.tp}`);

/** What the serving additions did to the chosen plan: prefix cache, speculative decoding, pipeline stages, the queue. */
function extraReasons(req: ServeRequest, b: ServeCandidate): string[] {
  const out: string[] = [];
  if (req.prefixHitRate) {
    const cached = Math.floor(req.prefixHitRate * req.promptTokens);
    out.push(`prefix cache: ${cached} of ${req.promptTokens} prompt tokens hit (${formatPercent(req.prefixHitRate)}): prefill runs on ${req.promptTokens - cached}, and the prefix's KV blocks are stored once`);
  }
  if (req.spec) {
    const e = expectedTokensPerStep(req.spec.k, req.spec.accept);
    out.push(`speculative decoding: k=${req.spec.k} at acceptance ${req.spec.accept}: ${e.toFixed(2)} tokens per target step ((1 - a^(k+1)) / (1 - a)), the draft's ${req.spec.k} steps at ${req.spec.draftCost} of a target step each`);
  }
  if (b.pp > 1) out.push(`pipeline over ${b.pp} nodes: no tensor-parallel degree in one node fits; each token passes ${b.pp} stages and ${b.pp - 1} inter-node hop${b.pp > 2 ? "s" : ""}`);
  if (b.queue) {
    const q = b.queue;
    out.push(`queueing (M/G/c, Erlang C with Allen-Cunneen, service SCV ${req.serviceScv ?? 1}): ${formatPercent(q.utilization)} utilization of ${q.instances} instances, ${formatPercent(q.waitProbability)} of requests wait, mean ${formatSeconds(q.meanWaitS)}, p99 ${formatSeconds(q.p99WaitS)}; p99 TTFT ${formatSeconds(q.p99TtftS)}` +
      (req.ttftTargetS === undefined ? "" : ` against the ${formatSeconds(req.ttftTargetS)} target`) + (b.instances.queueing ? ` (+${b.instances.queueing} instances for it)` : ""));
  }
  return out;
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
  if (req.prefixHitRate !== undefined && !(req.prefixHitRate >= 0 && req.prefixHitRate < 1)) throw new PlanInputError(`--prefix-hit: ${req.prefixHitRate} is not a share of the prompt in [0, 1)`);
  if (req.spec) checkSpecDecode(req.spec);
  const degrees = tpDegrees(m, gpu);
  const candidates = degrees.map((tp) => candidate(req, tp));
  // NOTE: when no degree within one node fits (405B in bf16 on 8 H100s), pipeline stages over nodes, each the largest tp group.
  const top = degrees[degrees.length - 1];
  // (only for memory: more stages never shorten a token's or a prefill's time)
  if (top !== undefined && !candidates.some((c) => c.fits) && candidates[candidates.length - 1]!.failure!.startsWith("memory")) {
    for (const pp of PIPELINE_NODES.filter((n) => n <= m.nLayers)) {
      const c = candidate(req, top, pp);
      candidates.push(c);
      if (c.fits) break;
    }
  }
  const fitting = candidates.filter((c) => c.fits);
  const base = { model: m.name, gpu: gpu.name, precision: req.precision, weightsBytes: countParams(m).total * info.weightBytes, kvBytesPerToken: kvBytesPerToken(m, kvElementBytes(req)), candidates };
  if (fitting.length === 0) {
    const largest = candidates[candidates.length - 1];
    return { ...base, reasons: [], failure: `no tensor-parallel degree up to ${largest?.tp ?? 1} (one ${gpu.name} node)${(largest?.pp ?? 1) > 1 ? `, nor pipeline stages over up to ${largest!.pp} nodes,` : ""} works: ${largest?.failure ?? "no degree divides the heads"}` };
  }
  // NOTE: with traffic, the cheapest deployment per hour; without, the cheapest instance per token it can serve.
  const cost = (c: ServeCandidate) => (req.requestsPerSecond === undefined ? c.costPerMillionTokens : c.costPerHour);
  const best = fitting.reduce((a, c) => (cost(c) < cost(a) || (cost(c) === cost(a) && c.stepMaxBatchS < a.stepMaxBatchS) ? c : a));
  const reasons = [
    `${shape(best)}: ${formatBytes(best.weightsBytesPerGpu)} of weights per GPU leaves room for ${best.kvTokens} KV tokens, ${best.maxBatch} requests of ${req.promptTokens + req.outputTokens} tokens at once` +
      (req.tpotTargetS !== undefined && best.maxBatch < Math.min(MAX_NUM_SEQS, Math.floor(best.kvTokens / (req.promptTokens + req.outputTokens))) ? ` (batch limited by the ${formatSeconds(req.tpotTargetS)} per-token target)` : ""),
    `decode: ${formatSeconds(best.stepMaxBatchS)} per ${req.spec ? "output token" : "step"} at batch ${best.maxBatch}, ${best.decodeTokensPerS.toFixed(0)} output tokens/s per instance; prefill of ${req.promptTokens} tokens ${formatSeconds(best.prefillS)}`,
    ...extraReasons(req, best),
    req.requestsPerSecond === undefined
      ? `capacity: one instance (${best.gpus} GPUs) serves ${best.requestsPerSecondPerInstance.toFixed(2)} requests/s, ${best.decodeTokensPerS.toFixed(0)} output tokens/s at batch ${best.maxBatch} (no --rps: no instances sized for traffic)`
      : `instances: ${best.instances.throughput} for ${req.requestsPerSecond} requests/s (${best.requestsPerSecondPerInstance.toFixed(2)} each), ${best.instances.concurrency} for concurrency, +${best.instances.spare} spare = ${best.instances.total} (${best.gpus} GPUs)`,
  ];
  for (const c of candidates) {
    if (c === best) continue;
    reasons.push(!c.fits ? `${shape(c)} fails: ${c.failure}`
      : req.requestsPerSecond === undefined ? `${shape(c)} costs ${formatDollars(c.costPerMillionTokens)} per million tokens at capacity against ${formatDollars(best.costPerMillionTokens)}`
      : `${shape(c)} costs $${c.costPerHour.toFixed(2)}/h against $${best.costPerHour.toFixed(2)}/h`);
  }
  return { ...base, best, reasons };
}
