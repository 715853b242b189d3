// chat.ts: POST /v1/chat/completions's shapes: the "chat.completion" object, or "chat.completion.chunk"
// events whose deltas start with each choice's role, with logprobs as {content: [{token, logprob,
// bytes, top_logprobs}]}. It owns only the JSON; validation is protocol.ts's, rendering the
// conversation the engine's (the model's chat template), the running generation.ts's.

import type { ChunkLogprob, GenerateChunk, TokenLogprobData } from "../engine_client.js";
import type { EndpointSpec } from "./endpoint.js";
import type { ChoiceResult, ResponseFormat, UsageBody } from "./generation.js";
import type { ChatRequest } from "./protocol.js";
import { parseChatRequest } from "./protocol.js";
import { chatPlan } from "./to_engine.js";

const tokenBody = (t: TokenLogprobData) => ({ token: t.text, logprob: t.logprob, bytes: t.bytes });
const contentLogprobs = (lps: readonly ChunkLogprob[]) => ({ content: lps.map((lp) => ({ ...tokenBody(lp), top_logprobs: lp.top.map(tokenBody) })) });

function chatFormat(id: string, created: number, req: ChatRequest): ResponseFormat {
  const withLogprobs = req.logprobs ?? false;
  const includeUsage = req.stream_options?.include_usage ?? false;
  const chunkHead = { id, object: "chat.completion.chunk", created, model: req.model, system_fingerprint: null };
  const event = (choice: unknown) => ({ ...chunkHead, choices: [choice], ...(includeUsage ? { usage: null } : {}) });
  return {
    streamStart: (n: number) =>
      Array.from({ length: n }, (_, index) => event({ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null })),
    streamChunk(index: number, chunk: GenerateChunk) {
      if (chunk.textDelta === "" && !chunk.finishReason && !chunk.logprobs?.length) return undefined;
      return event({
        index,
        delta: chunk.textDelta === "" ? {} : { content: chunk.textDelta },
        logprobs: withLogprobs ? contentLogprobs(chunk.logprobs ?? []) : null,
        finish_reason: chunk.finishReason ?? null,
      });
    },
    streamUsage: (usage: UsageBody) => ({ ...chunkHead, choices: [], usage }),
    response: (choices: readonly ChoiceResult[], usage: UsageBody) => ({
      id, object: "chat.completion", created, model: req.model, system_fingerprint: null,
      choices: choices.map((c, index) => ({
        index,
        message: { role: "assistant", content: c.text },
        logprobs: withLogprobs ? contentLogprobs(c.logprobs) : null,
        finish_reason: c.finishReason ?? null,
      })),
      usage,
    }),
  };
}

export const chatEndpoint: EndpointSpec<ChatRequest> = {
  name: "chat",
  idPrefix: "chatcmpl",
  parse: parseChatRequest,
  plan: chatPlan,
  format: chatFormat,
};
