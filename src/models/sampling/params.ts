// params.ts: the sampling parameters of one request (plain data) and their validation. It owns the
// names, defaults and allowed ranges; what each parameter does to the logits is processors.ts and
// sampler.ts. Errors name the field (SamplingParamError.field), so a caller (the CLI, later the
// OpenAI server) can report it under its own spelling (--top-p, "top_p").

/** Everything optional; validateSamplingParams fills the defaults (which change nothing). */
export interface SamplingParams {
  /** 0 = greedy (argmax); otherwise logits are divided by it. Default 1. */
  readonly temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 0. */
  readonly topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; 1 = off. Default 1. */
  readonly topP?: number;
  /** Drop tokens whose probability is below minP times the most likely one's; 0 = off. Default 0. */
  readonly minP?: number;
  /** llama.cpp / CTRL style, over tokens in the history: positive logits / penalty, negative * penalty; 1 = off. */
  readonly repetitionPenalty?: number;
  /** OpenAI style: subtract presencePenalty once from every token present in the history. In [-2, 2]. */
  readonly presencePenalty?: number;
  /** OpenAI style: subtract frequencyPenalty times the token's count in the history. In [-2, 2]. */
  readonly frequencyPenalty?: number;
  /** Added to a token's logit before anything else; -Infinity bans the token. */
  readonly logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
  /** Seed of the request's random stream; the same seed gives the same tokens. Default: a random seed. */
  readonly seed?: number;
  /** How many of the most likely tokens (with log-probabilities) to return with each sample. Default 0. */
  readonly topLogprobs?: number;
  /**
   * Which distribution the log-probabilities describe (vLLM's logprobs_mode): "raw", the model's own
   * (log-softmax of its logits, before bias, penalties, temperature and truncation; what the OpenAI
   * server reports), or "processed", the one the token was drawn from (after all of them). Default "processed".
   */
  readonly logprobsMode?: LogprobsMode;
}

export type LogprobsMode = "raw" | "processed";

/** Validated parameters with defaults filled in; logitBias as a Map. */
export interface ResolvedSamplingParams {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  readonly logitBias: ReadonlyMap<number, number>;
  readonly seed: number;
  readonly topLogprobs: number;
  readonly logprobsMode: LogprobsMode;
}

/** A sampling parameter out of range or of the wrong type; `field` is the SamplingParams key. */
export class SamplingParamError extends Error {
  constructor(readonly field: keyof SamplingParams, readonly requirement: string, readonly value: unknown) {
    super(`${field} ${requirement}, got ${describe(value)}`);
    this.name = "SamplingParamError";
  }
}

/** The most top logprobs one sample returns (OpenAI's limit is 20; a bit of room for tools). */
export const MAX_TOP_LOGPROBS = 100;
/** Seeds are integers in [0, 2^53): any JSON number a client sends without losing digits. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

const KNOWN: ReadonlySet<string> = new Set<keyof SamplingParams>([
  "temperature", "topK", "topP", "minP", "repetitionPenalty", "presencePenalty", "frequencyPenalty",
  "logitBias", "seed", "topLogprobs", "logprobsMode",
]);

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || v === undefined || v === null) return String(v);
  if (v instanceof Map) return `Map(${v.size})`;
  return typeof v;
}

function num(p: SamplingParams, field: keyof SamplingParams, def: number, ok: (x: number) => boolean, requirement: string): number {
  const v = p[field];
  if (v === undefined) return def;
  if (typeof v !== "number" || Number.isNaN(v) || !ok(v)) throw new SamplingParamError(field, requirement, v);
  return v;
}

function resolveBias(raw: SamplingParams["logitBias"]): ReadonlyMap<number, number> {
  if (raw === undefined) return new Map();
  if (typeof raw !== "object" || raw === null) throw new SamplingParamError("logitBias", "must be a Map or an object of token id -> bias", raw);
  const entries: [unknown, unknown][] = raw instanceof Map ? [...raw.entries()] : Object.entries(raw);
  const out = new Map<number, number>();
  for (const [k, v] of entries) {
    const id = typeof k === "string" && /^\d+$/.test(k) ? Number(k) : k;
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
      throw new SamplingParamError("logitBias", "keys must be token ids (integers >= 0)", k);
    }
    // NOTE: -Infinity bans a token; +Infinity or NaN would make the distribution meaningless.
    if (typeof v !== "number" || Number.isNaN(v) || v === Infinity) {
      throw new SamplingParamError("logitBias", `values must be finite numbers or -Infinity (token ${id})`, v);
    }
    out.set(id, v);
  }
  return out;
}

function resolveMode(m: unknown): LogprobsMode {
  if (m === undefined) return "processed";
  if (m === "raw" || m === "processed") return m;
  throw new SamplingParamError("logprobsMode", `must be "raw" or "processed"`, m);
}

/** A fresh seed for a request that did not give one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

/** Check every field, fill defaults; throws SamplingParamError naming the first bad field. */
export function validateSamplingParams(p: SamplingParams = {}): ResolvedSamplingParams {
  if (typeof p !== "object" || p === null) throw new Error(`sampling parameters must be an object, got ${describe(p)}`);
  for (const key of Object.keys(p)) {
    if (!KNOWN.has(key)) throw new Error(`unknown sampling parameter '${key}' (known: ${[...KNOWN].join(", ")})`);
  }
  const finite = Number.isFinite;
  return {
    temperature: num(p, "temperature", 1, (x) => finite(x) && x >= 0, "must be a finite number >= 0 (0 = greedy)"),
    topK: num(p, "topK", 0, (x) => Number.isSafeInteger(x) && x >= 0, "must be an integer >= 0 (0 = off)"),
    topP: num(p, "topP", 1, (x) => x > 0 && x <= 1, "must be in (0, 1]"),
    minP: num(p, "minP", 0, (x) => x >= 0 && x <= 1, "must be in [0, 1]"),
    repetitionPenalty: num(p, "repetitionPenalty", 1, (x) => finite(x) && x > 0, "must be a finite number > 0 (1 = off)"),
    presencePenalty: num(p, "presencePenalty", 0, (x) => x >= -2 && x <= 2, "must be in [-2, 2]"),
    frequencyPenalty: num(p, "frequencyPenalty", 0, (x) => x >= -2 && x <= 2, "must be in [-2, 2]"),
    logitBias: resolveBias(p.logitBias),
    seed: p.seed === undefined ? randomSeed() : num(p, "seed", 0, (x) => Number.isSafeInteger(x) && x >= 0 && x <= MAX_SEED, "must be an integer in [0, 2^53)"),
    topLogprobs: num(p, "topLogprobs", 0, (x) => Number.isSafeInteger(x) && x >= 0 && x <= MAX_TOP_LOGPROBS, `must be an integer in [0, ${MAX_TOP_LOGPROBS}]`),
    logprobsMode: resolveMode(p.logprobsMode),
  };
}
