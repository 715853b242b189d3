// sse_reader.test.ts: kiln's one server-sent-event reader (src/serve/sse_reader.ts), which `kiln bench
// serve` and the browser's HttpEngineClient share: events come out the same wherever the chunk
// boundaries fall (every byte its own chunk, or random splits, UTF-8 characters and \r\n cut in two),
// with \r\n, \n or \r line ends, multi-line data, comments and other fields, OpenAI's [DONE]; a
// partial last event is dropped, an event over the bound throws, and leaving early cancels the body.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SseError, sseData } from "../../src/serve/sse_reader.js";

/** A body delivering `chunks` (strings, or raw bytes) one read at a time; `cancelled` tells whether it was cancelled. */
function body(chunks: (string | Uint8Array)[]) {
  const state = { cancelled: false };
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(ctl) {
      const c = chunks[i++];
      if (c === undefined) ctl.close();
      else ctl.enqueue(typeof c === "string" ? new TextEncoder().encode(c) : c);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

async function all(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const d of it) out.push(d);
  return out;
}

/** `bytes` cut at `cuts` (sorted offsets). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  return out;
}

const everyByte = (bytes: Uint8Array) => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));

/** A stream as OpenAI-compatible servers send it: a comment, JSON events, a two-line event, [DONE]. */
const OPENAI_STREAM =
  ": ping\r\n\r\n" +
  'data: {"choices":[{"text":"caf\u00e9 \u{1F600}"}]}\r\n\r\n' +
  "event: message\nid: 7\nretry: 100\ndata: first line\ndata:second line\n\n" +
  "data: [DONE]\n\n";
const OPENAI_EVENTS = ['{"choices":[{"text":"caf\u00e9 \u{1F600}"}]}', "first line\nsecond line", "[DONE]"];

describe("sseData", () => {
  it("reads events whatever the line endings and chunk boundaries; drops a partial last event", async () => {
    const { stream } = body(["data: a\r", "\n\r\ndata: b\ndata: c\n\n: a comment\n\nevent: x\nid: 3\ndata:d\n\n", "data: e\r\r", "data: cut off"]);
    expect(await all(sseData(stream))).toEqual(["a", "b\nc", "d", "e"]);
  });

  it("gives the same events when every byte arrives on its own", async () => {
    const bytes = new TextEncoder().encode(OPENAI_STREAM);
    expect(await all(sseData(body([bytes]).stream))).toEqual(OPENAI_EVENTS);
    expect(await all(sseData(body(everyByte(bytes)).stream))).toEqual(OPENAI_EVENTS);
  });

  it("gives the same events for any events, line endings and chunk boundaries (property)", async () => {
    const line = fc.string({ unit: "grapheme", maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
    const event = fc.record({
      comment: fc.option(line, { nil: undefined }),
      data: fc.array(line, { minLength: 1, maxLength: 3 }),
      eol: fc.constantFrom("\n", "\r", "\r\n"),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), async (events, rawCuts) => {
        const text = events
          .map((e) => `${e.comment === undefined ? "" : `:${e.comment}${e.eol}`}${e.data.map((d) => `data: ${d}${e.eol}`).join("")}${e.eol}`)
          .join("");
        const bytes = new TextEncoder().encode(text);
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        // NOTE: "data: " + a value starting with a space keeps that space: only one space is dropped.
        const expected = events.map((e) => e.data.join("\n"));
        expect(await all(sseData(body(split(bytes, cuts)).stream))).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it("decodes a UTF-8 character split between chunks", async () => {
    const bytes = new TextEncoder().encode("data: caf\u00e9 \u{1F600}\n\n");
    const { stream } = body([bytes.subarray(0, 10), bytes.subarray(10, 14), bytes.subarray(14)]);
    expect(await all(sseData(stream))).toEqual(["caf\u00e9 \u{1F600}"]);
  });

  it("throws SseError on an event over the bound", async () => {
    const { stream } = body(["data: 0123456789", "0123456789\n"]);
    await expect(all(sseData(stream, 16))).rejects.toThrow(SseError);
  });

  it("cancels the body when the reader stops early", async () => {
    const { stream, state } = body(["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"]);
    for await (const d of sseData(stream)) if (d === "1") break;
    expect(state.cancelled).toBe(true);
  });
});
