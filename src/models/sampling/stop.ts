// stop.ts: when generation ends and what text may be streamed before it does: stop token ids (EOS
// and the request's own), stop strings matched on the decoded text, and max tokens. Text that could
// be the start of a stop string is held back until it is known not to be one, so streamed text is
// never retracted. It does not decode tokens (the tokenizer's detokenizer does) or sample them.

export type FinishReason = "stop" | "length";

export interface StopParams {
  /** Most tokens to generate (>= 1). */
  readonly maxTokens: number;
  /** Token ids that end generation (the model's EOS is added by the caller); the token's text is not emitted. */
  readonly stopTokenIds?: readonly number[];
  /** Strings that end generation when they appear in the output text; neither they nor what follows is emitted. */
  readonly stopStrings?: readonly string[];
}

export interface StopStep {
  /** Text that is now safe to stream (may be ""). */
  readonly text: string;
  /** Set when generation ends with this token. */
  readonly finish?: FinishReason;
}

/** Holds back the tail of the text that is a prefix of some stop string; reports the first full match. */
export class StopStringFilter {
  private held = "";
  private done = false;
  private readonly stops: readonly string[];

  constructor(stops: readonly string[]) {
    for (const [i, s] of stops.entries()) {
      if (typeof s !== "string" || s.length === 0) throw new Error(`stop strings: stopStrings[${i}] must be a non-empty string, got ${JSON.stringify(s)}`);
    }
    this.stops = stops;
  }

  /** Feed newly decoded text; returns what may be emitted now and whether a stop string was found. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.done) throw new Error("stop strings: push after a stop string was found");
    const buf = this.held + text;
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.done = true;
      this.held = "";
      return { text: buf.slice(0, at), stopped: true };
    }
    const keep = this.partialMatchLength(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Generation ended for another reason: the held text was not a stop string after all. */
  flush(): string {
    const t = this.held;
    this.held = "";
    return t;
  }

  /** Length of the longest suffix of buf that is a proper prefix of a stop string. */
  private partialMatchLength(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}

/** Stop conditions of one request, fed one generated token (and its decoded text) at a time. */
export class StopChecker {
  private readonly stopIds: ReadonlySet<number>;
  private readonly filter: StopStringFilter;
  private count = 0;
  private finished?: FinishReason;

  constructor(readonly params: StopParams) {
    if (!Number.isSafeInteger(params.maxTokens) || params.maxTokens < 1) {
      throw new Error(`maxTokens must be an integer >= 1, got ${params.maxTokens}`);
    }
    for (const id of params.stopTokenIds ?? []) {
      if (!Number.isSafeInteger(id) || id < 0) throw new Error(`stopTokenIds: ${id} is not a token id`);
    }
    this.stopIds = new Set(params.stopTokenIds ?? []);
    this.filter = new StopStringFilter(params.stopStrings ?? []);
  }

  /** Whether this id ends generation by itself (usable as the generation loop's isStop). */
  isStopToken(id: number): boolean {
    return this.stopIds.has(id);
  }

  /** The finish reason once generation has ended. */
  get finishReason(): FinishReason | undefined {
    return this.finished;
  }

  /** One generated token and its text (from the incremental detokenizer; "" while a character is incomplete). */
  step(id: number, text: string): StopStep {
    if (this.finished) throw new Error(`stop: step after generation finished (${this.finished})`);
    this.count++;
    if (this.stopIds.has(id)) return this.finish("stop", this.filter.flush());
    const out = this.filter.push(text);
    if (out.stopped) return this.finish("stop", out.text);
    if (this.count >= this.params.maxTokens) return this.finish("length", out.text + this.filter.flush());
    return { text: out.text };
  }

  /** Generation ended from outside (the context is full): release the held text. */
  end(reason: FinishReason): StopStep {
    return this.finished ? { text: "" } : this.finish(reason, this.filter.flush());
  }

  private finish(reason: FinishReason, text: string): StopStep {
    this.finished = reason;
    return { text, finish: reason };
  }
}
