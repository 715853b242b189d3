// index.ts: the sampling layer's entry: parameters and their validation, the sampler, stop
// conditions. Callers (the CLI, the serving layer) import from here, not from the files inside.

export type { ResolvedSamplingParams, SamplingParams } from "./params.js";
export { MAX_SEED, MAX_TOP_LOGPROBS, SamplingParamError, randomSeed, validateSamplingParams } from "./params.js";
export type { Judged, SampleResult, Sampler, TokenLogprob } from "./sampler.js";
export { createSampler } from "./sampler.js";
export { seedKey, uniformAt } from "./rng.js";
export type { FinishReason, StopParams, StopStep } from "./stop.js";
export { StopChecker, StopStringFilter } from "./stop.js";
