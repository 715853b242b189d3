// output_builder.ts: one request's output as GenerateChunks, built one sampled token at a time: the
// incremental detokenizer (whole UTF-8 characters only), the stop conditions (stop tokens, stop
// strings held back until they are known not to match, max tokens), log-probabilities with token
// text, and usage on the last chunk. The engine (engine.ts) feeds it from each step's sampled
// tokens; it does not sample, run the model or decide when a request runs.

import type { SampleResult, TokenLogprob } from "../models/sampling/index.js";
import { StopChecker } from "../models/sampling/index.js";
import type { Detokenizer, Tokenizer } from "../models/tokenizers/index.js";
import { createDetokenizer } from "../models/tokenizers/index.js";
import type { ChunkLogprob, EngineFinishReason, GenerateChunk, TokenLogprobData } from "./engine_client.js";

export interface OutputParams {
  readonly promptTokens: number;
  readonly maxTokens: number;
  readonly stopTokenIds: readonly number[];
  readonly stopStrings: readonly string[];
  /** Attach a ChunkLogprob to each token (the SampleResult must then be given). */
  readonly logprobs: boolean;
}

export class OutputBuilder {
  private readonly detok: Detokenizer;
  private readonly stop: StopChecker;
  private readonly pieceDecoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  private completionTokens = 0;
  private done = false;

  constructor(private readonly tokenizer: Tokenizer, private readonly params: OutputParams) {
    this.detok = createDetokenizer(tokenizer);
    this.stop = new StopChecker({ maxTokens: params.maxTokens, stopTokenIds: params.stopTokenIds, stopStrings: params.stopStrings });
  }

  get finished(): boolean {
    return this.done;
  }

  /** True when `id` ends the request by itself (a stop token): feed it to token() anyway; it is not output. */
  isStopToken(id: number): boolean {
    return this.stop.isStopToken(id);
  }

  /** The chunk for one sampled token; finishReason is set when the request ends with it. */
  token(id: number, sample?: SampleResult): GenerateChunk {
    if (this.done) throw new Error(`OutputBuilder: token ${id} after the request finished`);
    if (this.stop.isStopToken(id)) return this.end("stop");
    this.completionTokens++;
    const step = this.stop.step(id, this.detok.push(id));
    let text = step.text;
    // NOTE: a stop string cuts the text: a character left incomplete before it is dropped, not shown as U+FFFD.
    if (step.finish === "length") text += this.detok.flush();
    const logprobs = this.params.logprobs ? [this.logprob(id, sample)] : undefined;
    if (step.finish) this.done = true;
    return {
      textDelta: text, tokenIds: [id],
      ...(logprobs ? { logprobs } : {}),
      ...(step.finish ? { finishReason: step.finish, usage: this.usage() } : {}),
    };
  }

  /** The request ends without a new token: a stop token, the context is full ("length"), or it was aborted. */
  end(reason: EngineFinishReason): GenerateChunk {
    if (this.done) throw new Error(`OutputBuilder: end(${reason}) after the request finished`);
    this.done = true;
    const text = reason === "abort" ? "" : this.stop.end(reason).text + this.detok.flush();
    return { textDelta: text, tokenIds: [], finishReason: reason, usage: this.usage() };
  }

  private usage() {
    return { promptTokens: this.params.promptTokens, completionTokens: this.completionTokens };
  }

  private tokenData(t: TokenLogprob): TokenLogprobData {
    const bytes = this.tokenizer.tokenBytes(t.id, true);
    return { id: t.id, text: this.pieceDecoder.decode(bytes), bytes: Array.from(bytes), logprob: t.logprob };
  }

  private logprob(id: number, sample: SampleResult | undefined): ChunkLogprob {
    if (!sample || sample.id !== id) throw new Error(`OutputBuilder: logprobs were asked for but token ${id} came without its SampleResult`);
    return { ...this.tokenData(sample), top: (sample.top ?? []).map((t) => this.tokenData(t)) };
  }
}
