// output_builder_logprobs.test.ts: properties of OutputBuilder's text and logprobs over random token
// streams of the stories260K vocabulary (byte tokens, <unk>, words) with random stop strings: the
// listed tokens spell exactly the text sent, at the end and as a prefix after every chunk; without a
// stop string the text is the tokenizer's decoding of the tokens continuing the prompt.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtinModel, loadModel } from "../../src/models/formats/index.js";
import { loadLlama2cTokenizer } from "../../src/models/tokenizers/index.js";
import type { GenerateChunk } from "../../src/serve/engine_client.js";
import { OutputBuilder } from "../../src/serve/output_builder.js";

const tok = loadLlama2cTokenizer(builtinModel("stories260K")!.tokenizer, loadModel("stories260K").config.vocabSize);
const BOS = tok.bosId!;
const EOS = tok.eosId!;
/** Ids that make hard cases: <unk>, the two bytes of "é" and of a cut "€", and words. */
const id = fc.oneof(
  fc.constantFrom(0, tok.pieceToToken("<0xC3>")!, tok.pieceToToken("<0xA9>")!, tok.pieceToToken("<0xE2>")!, tok.pieceToToken("<0x82>")!),
  fc.integer({ min: 3, max: tok.vocabSize - 1 }),
);

interface Run { text: string; listed: string; chunks: GenerateChunk[] }

function run(ids: readonly number[], stop: string[], maxTokens: number, continuesText: boolean): Run {
  const out = new OutputBuilder(tok, { promptTokens: 5, maxTokens, stopTokenIds: [EOS], stopStrings: stop, logprobs: true, continuesText });
  const r: Run = { text: "", listed: "", chunks: [] };
  const take = (c: GenerateChunk) => {
    r.chunks.push(c);
    r.text += c.textDelta;
    r.listed += (c.logprobs ?? []).map((l) => l.text).join("");
    // NOTE: after every chunk the listed tokens spell a prefix of the text sent (never text not yet sent).
    expect(r.text.startsWith(r.listed)).toBe(true);
  };
  for (const t of ids) {
    take(out.token(t, { id: t, logprob: -1 }));
    if (out.finished) return r;
  }
  take(out.end("length"));
  return r;
}

describe("OutputBuilder logprobs", () => {
  it("the listed tokens spell the text, whatever stop strings cut it", () => {
    fc.assert(
      fc.property(fc.array(id, { minLength: 1, maxLength: 30 }), fc.array(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 2 }), fc.integer({ min: 1, max: 40 }), fc.boolean(), (ids, stops, maxTokens, cont) => {
        const r = run(ids, stops, maxTokens, cont);
        expect(r.listed).toBe(r.text);
      }),
      { numRuns: 400 },
    );
  });

  it("a stop string taken from the text itself cuts text and tokens at the same place", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 3, max: tok.vocabSize - 1 }), { minLength: 2, maxLength: 20 }), fc.nat(), fc.integer({ min: 1, max: 3 }), (ids, at, len) => {
        const full = tok.decode([BOS, ...ids], { stripLeadingSpace: false });
        const start = at % full.length;
        const stop = full.slice(start, start + len);
        // NOTE: U+FFFD of a character cut at the very end appears only when the output is flushed, after stop strings are checked.
        fc.pre(!stop.includes("\ufffd"));
        const r = run(ids, [stop], 100, true);
        expect(r.text).toBe(full.slice(0, full.indexOf(stop)));
        expect(r.listed).toBe(r.text);
      }),
      { numRuns: 300 },
    );
  });

  it("without stop strings the text is the decoding of the tokens after the prompt's text (leading space kept)", () => {
    fc.assert(
      fc.property(fc.array(id, { minLength: 1, maxLength: 30 }), (ids) => {
        const prompt = tok.encode("Once upon a time");
        const r = run(ids, [], 100, true);
        expect("Once upon a time" + r.text).toBe(tok.decode([...prompt, ...ids]));
        const fresh = run(ids, [], 100, false);
        expect(fresh.text).toBe(tok.decode([BOS, ...ids]));
      }),
      { numRuns: 300 },
    );
  });

  it("a stop token ends the output without being listed", () => {
    const words = tok.encode("Once upon").slice(1);
    const r = run([...words, EOS, 300], [], 10, true);
    expect(r.chunks.at(-1)!.finishReason).toBe("stop");
    expect(r.chunks.flatMap((c) => c.logprobs ?? []).map((l) => l.id)).toEqual(words);
    expect(r.text).toBe(" Once upon");
    expect(r.listed).toBe(r.text);
  });
});
