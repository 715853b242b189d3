// output_builder.ts: one request's output as GenerateChunks, built one sampled token at a time: the
// incremental detokenizer (whole UTF-8 characters only, continuing the prompt's text), the stop
// conditions (stop tokens, stop strings held back until they are known not to match, max tokens),
// log-probabilities whose token texts spell exactly the text sent, and usage on the last chunk. The
// engine (engine.ts) feeds it from each step's sampled tokens; it does not sample, run the model or
// decide when a request runs.

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
  /**
   * The prompt has text (not only control tokens such as BOS): the completion continues it, so the
   * first token keeps its leading space (prompt text + completion = decode(prompt + completion ids)).
   */
  readonly continuesText: boolean;
}

/** A token's logprob entry waiting for its text to be sent: [start, end) in the decoded output. */
interface Pending {
  lp: ChunkLogprob;
  readonly start: number;
  readonly end: number;
}

export class OutputBuilder {
  private readonly detok: Detokenizer;
  private readonly stop: StopChecker;
  private readonly pieceDecoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  private completionTokens = 0;
  private done = false;
  /** Characters decoded so far, and characters sent so far (the stop checker holds back the difference). */
  private decoded = 0;
  private sent = 0;
  private pending: Pending[] = [];

  constructor(private readonly tokenizer: Tokenizer, private readonly params: OutputParams) {
    this.detok = createDetokenizer(tokenizer, params.continuesText ? { stripLeadingSpace: false } : {});
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
    const piece = this.detok.push(id);
    if (this.params.logprobs) this.hold(this.logprob(id, piece, sample), piece);
    const step = this.stop.step(id, piece);
    let text = step.text;
    // NOTE: a stop string cuts the text: a character left incomplete before it is dropped, not shown as U+FFFD.
    if (step.finish === "length") text += this.flushDecoder();
    if (step.finish) this.done = true;
    const logprobs = this.params.logprobs ? this.release(text, step.finish) : undefined;
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
    const text = reason === "abort" ? "" : this.stop.end(reason).text + this.flushDecoder();
    const logprobs = this.params.logprobs && reason !== "abort" ? this.release(text, reason) : undefined;
    return { textDelta: text, tokenIds: [], ...(logprobs?.length ? { logprobs } : {}), finishReason: reason, usage: this.usage() };
  }

  private usage() {
    return { promptTokens: this.params.promptTokens, completionTokens: this.completionTokens };
  }

  /** What the decoder still holds (an incomplete character, as U+FFFD); it belongs to the last token. */
  private flushDecoder(): string {
    const rest = this.detok.flush();
    const last = this.pending.at(-1);
    if (rest !== "" && last) last.lp = { ...last.lp, text: last.lp.text + rest };
    this.decoded += rest.length;
    return rest;
  }

  private hold(lp: ChunkLogprob, piece: string): void {
    this.pending.push({ lp, start: this.decoded, end: this.decoded + piece.length });
    this.decoded += piece.length;
  }

  /**
   * The logprob entries whose text has now been sent with `text`. NOTE: an entry goes out once its
   * whole text has and a later token came, so the tokens listed always spell a prefix of the text
   * sent. When the request ends, everything left goes out; if a stop string cut the text, tokens
   * past the cut are dropped and one straddling it is cut too.
   */
  private release(text: string, finish: EngineFinishReason | undefined): ChunkLogprob[] {
    this.sent += text.length;
    if (finish === undefined) {
      // NOTE: the newest token waits for the next: the decoder may still owe it text (an incomplete character).
      let n = 0;
      while (n < this.pending.length - 1 && this.pending[n]!.end <= this.sent) n++;
      return this.pending.splice(0, n).map((p) => p.lp);
    }
    const cut = this.sent < this.decoded;
    const out = this.pending
      .filter((p) => !cut || p.start < this.sent)
      .map((p) => (p.end <= this.sent ? p.lp : { ...p.lp, text: p.lp.text.slice(0, this.sent - p.start) }));
    this.pending = [];
    return out;
  }

  private tokenData(t: TokenLogprob): TokenLogprobData {
    const bytes = this.tokenizer.tokenBytes(t.id, true);
    return { id: t.id, text: this.pieceDecoder.decode(bytes), bytes: Array.from(bytes), logprob: t.logprob };
  }

  /**
   * The chosen token's entry: its text is what it added to the output (`piece`), so a control token
   * shows as nothing, as in the text; the alternatives show control tokens as written ("<unk>").
   */
  private logprob(id: number, piece: string, sample: SampleResult | undefined): ChunkLogprob {
    if (!sample || sample.id !== id) throw new Error(`OutputBuilder: logprobs were asked for but token ${id} came without its SampleResult`);
    const bytes = this.tokenizer.tokenBytes(id, false);
    return { id, text: piece, bytes: Array.from(bytes), logprob: sample.logprob, top: (sample.top ?? []).map((t) => this.tokenData(t)) };
  }
}
