// to_engine.ts: OpenAI requests as engine requests: one GenerateRequest per choice (n per prompt;
// completions may carry several prompts), OpenAI's sampling fields under the sampler's names, and
// the way back from an engine error's field name to the request's ("sampling.topP" -> "top_p"). It
// owns the OpenAI defaults (max_tokens 16 for completions, the rest of the context for chat). It does
// not validate types (protocol.ts) or run anything.

import type { ChatMessage } from "../../models/chat_template.js";
import type { SamplingParams } from "../../models/sampling/index.js";
import type { GenerateRequest, PromptInput } from "../engine_client.js";
import type { ChatMessageIn, ChatRequest, CompletionRequest } from "./protocol.js";

export type Endpoint = "completions" | "chat";

/** The engine requests of one API request; requests[i] is choice i. */
export interface EnginePlan {
  readonly requests: readonly GenerateRequest[];
  /** For each choice, which prompt it continues: usage counts each prompt's tokens once. */
  readonly promptIndex: readonly number[];
  /** The requested completion length, to check against the model's context before queueing. */
  readonly maxTokens: number | undefined;
}

/** Who is asking: the API key's tenant (when keys are configured). */
export interface Caller {
  readonly tenant?: string;
}

/** OpenAI's default for /v1/completions. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

type Common = CompletionRequest | ChatRequest;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Sampling parameters of choice k. NOTE: with a seed and n > 1, choice k draws with seed + k: each
 * choice has its own sampler here, and one shared seed would make every choice the same text.
 */
function sampling(req: Common, k: number, topLogprobs: number | undefined): SamplingParams {
  const s: Mutable<SamplingParams> = {};
  if (req.temperature != null) s.temperature = req.temperature;
  if (req.top_p != null) s.topP = req.top_p;
  if (req.top_k != null) s.topK = Math.max(0, req.top_k);
  if (req.min_p != null) s.minP = req.min_p;
  if (req.presence_penalty != null) s.presencePenalty = req.presence_penalty;
  if (req.frequency_penalty != null) s.frequencyPenalty = req.frequency_penalty;
  if (req.repetition_penalty != null) s.repetitionPenalty = req.repetition_penalty;
  if (req.logit_bias != null) s.logitBias = Object.fromEntries(Object.entries(req.logit_bias).map(([id, b]) => [Number(id), b]));
  if (req.seed != null) s.seed = req.seed <= Number.MAX_SAFE_INTEGER - k ? req.seed + k : req.seed - k;
  if (topLogprobs !== undefined) {
    s.topLogprobs = topLogprobs;
    // NOTE: the model's distribution, as vLLM reports by default: after top_p or min_p the drawn one is often 0.0.
    s.logprobsMode = "raw";
  }
  return s;
}

function stopList(stop: Common["stop"]): string[] | undefined {
  if (stop == null) return undefined;
  return typeof stop === "string" ? [stop] : stop;
}

function plan(
  req: Common, id: string, caller: Caller, prompts: readonly PromptInput[], maxTokens: number | undefined,
  logprobs: { on: boolean; top: number | undefined },
): EnginePlan {
  const n = req.n ?? 1;
  const requests: GenerateRequest[] = [];
  const promptIndex: number[] = [];
  const stop = stopList(req.stop);
  prompts.forEach((prompt, p) => {
    for (let k = 0; k < n; k++) {
      const index = p * n + k;
      requests.push({
        reqId: `${id}-${index}`, model: req.model, prompt, sampling: sampling(req, k, logprobs.top),
        ...(maxTokens === undefined ? {} : { maxTokens }),
        ...(stop ? { stop } : {}),
        ...(logprobs.on ? { logprobs: true } : {}),
        ...(req.tier != null ? { tier: req.tier } : {}),
        ...(req.ignore_eos ? { ignoreEos: true } : {}),
        ...(req.speculative === false ? { speculative: false } : {}),
        ...(caller.tenant !== undefined ? { tenant: caller.tenant } : {}),
        ...(req.user != null ? { user: req.user } : {}),
      });
      promptIndex.push(p);
    }
  });
  return { requests, promptIndex, maxTokens };
}

export function completionPlan(req: CompletionRequest, id: string, caller: Caller): EnginePlan {
  const p = req.prompt;
  const prompts: PromptInput[] =
    typeof p === "string" ? [{ kind: "text", text: p }]
    : typeof p[0] === "string" ? (p as string[]).map((text) => ({ kind: "text", text }))
    : typeof p[0] === "number" ? [{ kind: "tokens", tokenIds: p as number[] }]
    : (p as number[][]).map((tokenIds) => ({ kind: "tokens", tokenIds }));
  const top = req.logprobs ?? undefined;
  return plan(req, id, caller, prompts, req.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS, { on: top !== undefined, top });
}

/** Text parts are joined with newlines (vLLM does the same). NOTE: "developer" is OpenAI's new name for "system", which every template knows. */
function chatMessage(m: ChatMessageIn): ChatMessage {
  const content = m.content == null ? "" : typeof m.content === "string" ? m.content : m.content.map((part) => part.text).join("\n");
  return { role: m.role === "developer" ? "system" : m.role, content };
}

export function chatPlan(req: ChatRequest, id: string, caller: Caller): EnginePlan {
  const prompt: PromptInput = { kind: "chat", messages: req.messages.map(chatMessage) };
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? undefined;
  const on = req.logprobs ?? false;
  return plan(req, id, caller, [prompt], maxTokens, { on, top: on ? (req.top_logprobs ?? 0) : undefined });
}

const SAMPLING_NAMES: Readonly<Record<string, string>> = {
  temperature: "temperature", topP: "top_p", topK: "top_k", minP: "min_p", seed: "seed",
  presencePenalty: "presence_penalty", frequencyPenalty: "frequency_penalty", repetitionPenalty: "repetition_penalty",
  logitBias: "logit_bias",
};

/** The request field an engine error names (GenerateRequest field -> OpenAI field). */
export function apiParamName(engineParam: string, endpoint: Endpoint): string {
  if (engineParam === "maxTokens") return "max_tokens";
  if (engineParam === "sampling.topLogprobs") return endpoint === "chat" ? "top_logprobs" : "logprobs";
  if (engineParam.startsWith("sampling.")) return SAMPLING_NAMES[engineParam.slice(9)] ?? engineParam;
  return engineParam;
}
