// endpoint.ts: what a generating endpoint is (how it parses a body, turns it into engine requests and
// shapes its answer) and the one path every such request takes: validate, find the model (404),
// check max_tokens against its context and that its choices can all run at once (400), then run.
// completions.ts and chat.ts are the two specs;
// the server routes to them. It does not read bodies or check API keys (server.ts does).

import { randomUUID } from "node:crypto";
import type { ModelCard } from "../engine_client.js";
import { badRequest, notFound } from "./errors.js";
import type { GenerationContext, ResponseFormat } from "./generation.js";
import { runGeneration } from "./generation.js";
import type { Caller, EnginePlan, Endpoint } from "./to_engine.js";

/** The fields every generating request has. */
export interface StreamFields {
  readonly model: string;
  readonly stream?: boolean | null | undefined;
  readonly stream_options?: { readonly include_usage?: boolean | null | undefined } | null | undefined;
}

export interface EndpointSpec<R extends StreamFields> {
  readonly name: Endpoint;
  /** Response ids look like `${idPrefix}-<32 hex>`. */
  readonly idPrefix: string;
  /** The validated request; throws a 400 ApiError. */
  parse(body: unknown): R;
  plan(req: R, id: string, caller: Caller): EnginePlan;
  format(id: string, created: number, req: R): ResponseFormat;
}

/** Serve one request body on an endpoint; throws an ApiError while nothing has been sent. */
export async function serveEndpoint<R extends StreamFields>(spec: EndpointSpec<R>, ctx: GenerationContext, body: unknown, caller: Caller): Promise<void> {
  const req = spec.parse(body);
  const cards = await ctx.engine.models();
  const card = cards.find((c) => c.id === req.model);
  if (!card) {
    throw notFound(`the model '${req.model}' does not exist (served: ${cards.map((c) => c.id).join(", ") || "none"})`, "model", "model_not_found");
  }
  const id = `${spec.idPrefix}-${randomUUID().replace(/-/g, "")}`;
  const plan = spec.plan(req, id, caller);
  if (plan.maxTokens !== undefined && plan.maxTokens >= card.maxModelLen) {
    throw badRequest(
      `max_tokens is ${plan.maxTokens}, but model '${card.id}' has a context of ${card.maxModelLen} tokens, prompt included (at most ${card.maxModelLen - 1})`,
      "max_tokens",
    );
  }
  checkGroupFits(card, plan, req.stream ?? false);
  const options = { model: req.model, stream: req.stream ?? false, includeUsage: req.stream_options?.include_usage ?? false };
  await runGeneration(ctx, plan, options, spec.format(id, Math.floor(Date.now() / 1000), req));
}

/**
 * Refuse up front (400) a group of choices (prompts x n) that cannot all run at once, rather than
 * let it queue behind itself. NOTE: choices beyond the seats waited for their own siblings to finish,
 * and a plain answer that needed longer than the queue timeout ended in 503 after a minute, its
 * finished choices thrown away (16 prompts x n = 16, max_tokens 500). A stream may exceed the KV
 * cache (preemption takes turns, and each choice is sent as it finishes); a plain answer may not.
 */
function checkGroupFits(card: ModelCard, plan: EnginePlan, stream: boolean): void {
  const choices = plan.requests.length;
  const seats = Math.min(card.maxRunning ?? Infinity, card.maxRequests ?? Infinity);
  if (choices > seats) {
    throw badRequest(
      `this request asks for ${choices} completions (prompts x n), but model '${card.id}' runs at most ${seats} requests at once; send fewer prompts or a smaller n`,
      "n",
    );
  }
  const tokens = choices * (plan.maxTokens ?? 0);
  if (!stream && card.kvTokens !== undefined && tokens > card.kvTokens) {
    throw badRequest(
      `this request asks for ${choices} completions (prompts x n) of up to ${plan.maxTokens} tokens, ${tokens} tokens together, but model '${card.id}''s KV cache holds ${card.kvTokens} tokens; lower max_tokens, n or the number of prompts, or stream the answer`,
      "max_tokens",
    );
  }
}
