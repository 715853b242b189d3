// completions.ts: POST /v1/completions's shapes: the "text_completion" object, streamed chunk by chunk
// or whole, with legacy logprobs ({tokens, token_logprobs, top_logprobs, text_offset}). It owns only
// the JSON; validation is protocol.ts's, engine requests to_engine.ts's, the running generation.ts's.

import type { ChunkLogprob, GenerateChunk } from "../engine_client.js";
import type { EndpointSpec } from "./endpoint.js";
import type { ChoiceResult, ResponseFormat, UsageBody } from "./generation.js";
import type { CompletionRequest } from "./protocol.js";
import { parseCompletionRequest } from "./protocol.js";
import { completionPlan } from "./to_engine.js";

interface LegacyLogprobs {
  readonly tokens: string[];
  readonly token_logprobs: number[];
  readonly top_logprobs: Record<string, number>[];
  readonly text_offset: number[];
}

function completionFormat(id: string, created: number, req: CompletionRequest): ResponseFormat {
  const head = { id, object: "text_completion", created, model: req.model };
  const withLogprobs = req.logprobs != null;
  const includeUsage = req.stream_options?.include_usage ?? false;
  // NOTE: text_offset counts characters of the tokens' own text from the start of each choice's completion.
  const offsets = new Map<number, number>();
  const legacy = (index: number, lps: readonly ChunkLogprob[]): LegacyLogprobs => {
    let at = offsets.get(index) ?? 0;
    const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const lp of lps) {
      out.tokens.push(lp.text);
      out.token_logprobs.push(lp.logprob);
      out.top_logprobs.push(Object.fromEntries(lp.top.map((t) => [t.text, t.logprob])));
      out.text_offset.push(at);
      at += lp.text.length;
    }
    offsets.set(index, at);
    return out;
  };
  return {
    streamStart: () => [],
    streamChunk(index: number, chunk: GenerateChunk) {
      if (chunk.textDelta === "" && !chunk.finishReason && !chunk.logprobs?.length) return undefined;
      const logprobs = withLogprobs ? legacy(index, chunk.logprobs ?? []) : null;
      const choice = { index, text: chunk.textDelta, logprobs, finish_reason: chunk.finishReason ?? null };
      return { ...head, choices: [choice], ...(includeUsage ? { usage: null } : {}) };
    },
    streamUsage: (usage: UsageBody) => ({ ...head, choices: [], usage }),
    response: (choices: readonly ChoiceResult[], usage: UsageBody) => ({
      ...head,
      choices: choices.map((c, index) => ({
        index, text: c.text, logprobs: withLogprobs ? legacy(index, c.logprobs) : null, finish_reason: c.finishReason ?? null,
      })),
      usage,
    }),
  };
}

export const completionsEndpoint: EndpointSpec<CompletionRequest> = {
  name: "completions",
  idPrefix: "cmpl",
  parse: parseCompletionRequest,
  plan: completionPlan,
  format: completionFormat,
};
