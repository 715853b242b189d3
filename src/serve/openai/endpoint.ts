// endpoint.ts: what a generating endpoint is (how it parses a body, turns it into engine requests and
// shapes its answer) and the one path every such request takes: validate, find the model (404),
// check max_tokens against its context (400), then run. completions.ts and chat.ts are the two specs;
// the server routes to them. It does not read bodies or check API keys (server.ts does).

import { randomUUID } from "node:crypto";
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
  // NOTE: choices are queued one by one; a group that can never fit would be refused with 429 at its
  // Nth choice, and a client that honours Retry-After would retry forever: refuse it as a bad request.
  if (card.maxRequests !== undefined && plan.requests.length > card.maxRequests) {
    throw badRequest(
      `this request asks for ${plan.requests.length} completions (prompts x n), but model '${card.id}' holds at most ${card.maxRequests} requests at once (running + queued); send fewer prompts or a smaller n`,
      "n",
    );
  }
  const options = { model: req.model, stream: req.stream ?? false, includeUsage: req.stream_options?.include_usage ?? false };
  await runGeneration(ctx, plan, options, spec.format(id, Math.floor(Date.now() / 1000), req));
}
