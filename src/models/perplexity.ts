// perplexity.ts: perplexity of a model on a token stream, counted the way llama.cpp's perplexity tool
// counts it: the tokens are cut into non-overlapping chunks of `ctx` tokens, each chunk is run on its own
// (its first token replaced by BOS when the tokenizer has one), and only the second half of each chunk is
// scored (every scored token sees at least ctx/2 tokens of context). ppl = exp(mean negative log-likelihood).
// It does not read files or tokenize (the CLI does); it owns the counting.

import type { Tensor } from "../index.js";
import { logSoftmax, noGrad, tensor } from "../index.js";
import { BatchContext } from "./batch_context.js";
import type { CausalTransformer } from "./language_model.js";

export interface PerplexityResult {
  readonly perplexity: number;
  /** Mean negative log-likelihood (nats) over the scored tokens. */
  readonly nll: number;
  readonly chunks: number;
  readonly scoredTokens: number;
}

/** Perplexity of `tokens` under `model` in chunks of `ctx` tokens (llama.cpp's counting; see the file comment). */
export async function perplexity(model: CausalTransformer, tokens: readonly number[], ctx: number, bosId?: number): Promise<PerplexityResult> {
  if (!Number.isInteger(ctx) || ctx < 4) throw new Error(`perplexity: the context must be an integer >= 4, got ${ctx}`);
  if (ctx > model.cacheShape.maxSeq) throw new Error(`perplexity: a context of ${ctx} tokens is over the model's ${model.cacheShape.maxSeq}`);
  const chunks = Math.floor(tokens.length / ctx);
  if (chunks === 0) throw new Error(`perplexity: the text has ${tokens.length} tokens, fewer than one chunk of ${ctx}`);
  const first = Math.floor(ctx / 2);
  let nllSum = 0;
  let scored = 0;
  for (let c = 0; c < chunks; c++) {
    const ids = tokens.slice(c * ctx, (c + 1) * ctx);
    if (bosId !== undefined) ids[0] = bosId;
    const lp = (await noGrad(() => {
      const x: Tensor = tensor(Int32Array.from(ids), { backend: model.backend, dtype: "i32" });
      const logits = model.logits(x, new BatchContext(1, ctx)).cast("f32"); // (ctx, vocab)
      // log-probabilities at the scored positions j in [first, ctx - 1), each predicting token j + 1
      return logSoftmax(logits.slice(0, first, ctx - 1), -1);
    }).data()) as Float32Array;
    const vocab = lp.length / (ctx - 1 - first);
    for (let j = first; j < ctx - 1; j++) nllSum -= lp[(j - first) * vocab + ids[j + 1]!]!;
    scored += ctx - 1 - first;
  }
  const nll = nllSum / scored;
  return { perplexity: Math.exp(nll), nll, chunks, scoredTokens: scored };
}
