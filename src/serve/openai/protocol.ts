// protocol.ts: the OpenAI request bodies kiln accepts, as zod schemas (POST /v1/completions and
// /v1/chat/completions), and their validation into typed requests or a 400 ApiError naming the field.
// Field names and ranges are OpenAI's; a few vLLM extensions (top_k, min_p, repetition_penalty,
// ignore_eos) and kiln's SLA tier field (tier) and speculative-decoding opt-out (speculative: false) are accepted too. Features kiln does not have (tools,
// response formats, suffix, echo, best_of) are refused by name rather than silently ignored. It does
// not turn requests into engine requests (to_engine.ts) or shape responses (completions.ts, chat.ts).

import { z } from "zod";
import { badRequest } from "./errors.js";

/** Most choices per request (n), most prompts in one completions request, most stop strings. */
export const MAX_N = 16;
export const MAX_PROMPTS = 16;
export const MAX_STOP = 16;
/** Most top log-probabilities per token (OpenAI allows 5 for completions and 20 for chat; both get 20 here). */
export const MAX_TOP_LOGPROBS = 20;

const tokenId = z.number().int().min(0);

const samplingFields = {
  model: z.string().min(1),
  max_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(MAX_N).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** vLLM's: -1 or 0 = off. */
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().min(0).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, { error: "keys must be token ids" }), z.number().min(-100).max(100)).nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(MAX_STOP)], { error: `stop must be a non-empty string or a list of at most ${MAX_STOP} non-empty strings` }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  ignore_eos: z.boolean().nullish(),
  tier: z.string().min(1).nullish(),
  /** kiln's: false opts this request out of speculative decoding (when the server runs it). */
  speculative: z.boolean().nullish(),
};

export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union(
    [
      z.string().min(1),
      z.array(z.string().min(1)).min(1).max(MAX_PROMPTS),
      z.array(tokenId).min(1),
      z.array(z.array(tokenId).min(1)).min(1).max(MAX_PROMPTS),
    ],
    { error: `prompt must be a non-empty string, a list of up to ${MAX_PROMPTS} non-empty strings, a non-empty list of token ids, or a list of such lists` },
  ),
  /** How many top log-probabilities per token; 0 = only the chosen token's. */
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  echo: z.boolean().nullish(),
  best_of: z.number().int().nullish(),
  suffix: z.string().nullish(),
});

const textPart = z.object({
  type: z.literal("text", { error: "only text content parts are supported" }),
  text: z.string(),
});

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(textPart)], { error: "content must be a string or a list of text parts" }).nullish(),
  name: z.string().nullish(),
});

export const chatRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(message).min(1, { error: "messages must have at least one message" }),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
  functions: z.array(z.unknown()).nullish(),
  function_call: z.unknown().optional(),
  response_format: z.object({ type: z.string() }).passthrough().nullish(),
});

export type CompletionRequest = z.infer<typeof completionRequestSchema>;
export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type ChatMessageIn = z.infer<typeof message>;

/** Parse a body with a schema; a 400 naming the first bad field (and how many more there are). */
export function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("the request body must be a JSON object");
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const [first, ...rest] = r.error.issues;
  const param = first!.path.map(String).join(".");
  // NOTE: zod says "expected string, received undefined" for a field that is missing; say so plainly.
  if (first!.path.length === 1 && (body as Record<string, unknown>)[param] === undefined) {
    throw badRequest(`${param}: is required`, param);
  }
  const more = rest.length ? ` (and ${rest.length} more problem${rest.length > 1 ? "s" : ""})` : "";
  throw badRequest(`${param || "body"}: ${first!.message}${more}`, param || null);
}

const unsupported = (param: string, what: string) => badRequest(`${param}: ${what} is not supported by kiln`, param);

function checkStreamOptions(req: { stream?: boolean | null; stream_options?: unknown }): void {
  if (req.stream_options != null && !req.stream) throw badRequest("stream_options: only allowed when stream is true", "stream_options");
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const req = parse(completionRequestSchema, body);
  checkStreamOptions(req);
  if (req.suffix != null) throw unsupported("suffix", "inserting text (suffix)");
  if (req.echo) throw unsupported("echo", "echoing the prompt");
  if (req.best_of != null && req.best_of !== (req.n ?? 1)) throw unsupported("best_of", "best_of other than n");
  return req;
}

export function parseChatRequest(body: unknown): ChatRequest {
  const req = parse(chatRequestSchema, body);
  checkStreamOptions(req);
  if (req.tools?.length) throw unsupported("tools", "tool calling");
  if (req.functions?.length) throw unsupported("functions", "function calling");
  if (req.tool_choice != null && req.tool_choice !== "none") throw unsupported("tool_choice", "tool calling");
  if (req.function_call != null && req.function_call !== "none") throw unsupported("function_call", "function calling");
  if (req.response_format != null && req.response_format.type !== "text") throw unsupported("response_format", `response_format '${req.response_format.type}'`);
  if (req.top_logprobs != null && !req.logprobs) throw badRequest("top_logprobs: needs logprobs set to true", "top_logprobs");
  if (req.max_tokens != null && req.max_completion_tokens != null && req.max_tokens !== req.max_completion_tokens) {
    throw badRequest("max_tokens and max_completion_tokens disagree: give one", "max_completion_tokens");
  }
  return req;
}
