// generate.ts: the generation loop: prefill the prompt, then sample a token, yield it, feed it back.
// What to pick (greedy, temperature, penalties) and when to stop early are the caller's functions;
// the loop owns only the order of calls and the context limit.

import type { LanguageModel } from "./language_model.js";

export interface GenerateOptions {
  /** At most this many new tokens. */
  readonly maxTokens: number;
  /** The next token, from the logits of the last position and every token so far (prompt included). */
  readonly sample: (logits: Float32Array, history: number[]) => number;
  /** True when `id` ends the generation; it is not yielded. `history` is every token before it. */
  readonly isStop?: (id: number, history: number[]) => boolean;
}

/**
 * Yield up to maxTokens new token ids after `promptIds` (the model is reset first). Stops early at a
 * stop token or when the context is full. A prompt longer than the context is an error.
 */
export async function* generate(model: LanguageModel, promptIds: number[], opts: GenerateOptions): AsyncGenerator<number> {
  if (!(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 0)) throw new Error(`generate: maxTokens must be an integer >= 0, got ${opts.maxTokens}`);
  model.reset();
  if (opts.maxTokens === 0) return;
  const history = [...promptIds];
  let logits = await model.forwardPrefill(promptIds);
  for (let produced = 0; ; ) {
    const id = opts.sample(logits, history);
    if (opts.isStop?.(id, history)) return;
    history.push(id);
    yield id;
    // NOTE: the last token is not fed back: nothing would read its logits (llama2.c stops the same way).
    if (++produced === opts.maxTokens || model.position >= model.contextLength) return;
    logits = await model.decodeStep(id);
  }
}
