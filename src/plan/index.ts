// index.ts: the planner's public API: model accounting, the GPU table, the training and serving
// planners, and planServing() for `kiln serve`'s auto settings. Callers import from here.

export type { MoeShape, PlanModel } from "./plan_model.js";
export { planModelFromConfig, planModelFromHf } from "./plan_model.js";
export { MODEL_ALIASES, MODEL_PRESET_NAMES, findPreset, findPresetByHubName, knownModelsText } from "./presets.js";
export { resolveModel } from "./resolve_model.js";
export type { ParamCounts } from "./accounting.js";
export {
  attentionWidth, backwardFlopsPerToken, countParams, forwardFlopsPerToken, kvBytesPerToken, matmulParams, paramsRead, prefillFlops, trainingFlopsPerToken,
} from "./accounting.js";
export type { GpuSpec } from "./gpus.js";
export { GPU_NAMES, customGpu, findGpu, listGpus } from "./gpus.js";
export type { Precision } from "./precision.js";
export { PRECISIONS, parsePrecision, precisionInfo } from "./precision.js";
export type { CommModel, Link } from "./collectives.js";
export {
  COMM_DEFAULTS, IDEAL_COMM, allGatherSeconds, allGatherTime, allReduceTime, allToAllSeconds, allToAllTime, groupLink, p2pSeconds, p2pTime, reduceScatterTime, ringAllReduceSeconds,
} from "./collectives.js";
export type { TrainLayout, TrainMemory, TrainPrecision, ZeroStage } from "./train_memory.js";
export { trainMemoryPerGpu } from "./train_memory.js";
export type { CommTime, StepEstimate } from "./train_step.js";
export { TRAIN_COMPUTE_EFFICIENCY, estimateStep, pipelineBubble } from "./train_step.js";
export type { TrainCandidate, TrainPlan, TrainRequest } from "./train_plan.js";
export { DEFAULT_BATCH_TOKENS, USABLE_MEMORY_FRACTION, describeLayout, planTraining } from "./train_plan.js";
export type { KvDtype, ServeCandidate, ServePlan, ServeRequest } from "./serve_plan.js";
export { KV_DTYPES, kvElementBytes, planServe } from "./serve_plan.js";
export type { ServingAutoInput, ServingAutoPlan } from "./auto_config.js";
export { MAX_NUM_SEQS, STEP_TOKENS, planServing } from "./auto_config.js";
export {
  PlanInputError, formatBytes, formatCount, formatDollars, formatFlops, formatInt, formatPercent, formatSeconds, parseCount, parseLength, parsePositive,
} from "./units.js";
export type { CommOverrides, CommSensitivityRow } from "./comm_model.js";
export { COMM_SCENARIOS, commModel, commSensitivity } from "./comm_model.js";
export type { FixedLayout } from "./train_layouts.js";
export { FIXED_FIELDS, checkFixedLayout } from "./train_layouts.js";
export type { AttentionKind, PipelineSchedule, TrainOptions } from "./train_options.js";
export { ATTENTION_KINDS, SCHEDULES, TRAIN_PRECISIONS, parseAttention, parseSchedule, parseTrainPrecision } from "./train_options.js";
export type { QueueEstimate, QueueInput } from "./serve_queueing.js";
export { erlangC, queueWait } from "./serve_queueing.js";
export type { SpecDecode } from "./spec_decode.js";
export { expectedTokensPerStep } from "./spec_decode.js";
export type { ServeQueue } from "./serve_plan.js";
export type { LoraOptions } from "./lora.js";
