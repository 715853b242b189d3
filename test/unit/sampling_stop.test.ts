// sampling_stop.test.ts: stop conditions: stop strings matched across token boundaries, text held
// back while it could still be a stop string (and never retracted once streamed), stop token ids,
// max tokens, and the finish reasons.

import { describe, expect, it } from "vitest";
import { StopChecker, StopStringFilter } from "../../src/models/sampling/index.js";

/** Feed pieces through a filter; returns what was streamed, piece by piece, and whether it stopped. */
function stream(stops: string[], pieces: string[]): { out: string[]; stopped: boolean; rest: string } {
  const f = new StopStringFilter(stops);
  const out: string[] = [];
  for (const p of pieces) {
    const r = f.push(p);
    out.push(r.text);
    if (r.stopped) return { out, stopped: true, rest: "" };
  }
  return { out, stopped: false, rest: f.flush() };
}

describe("stop strings", () => {
  it("hold back a possible start, then release it when it is not a stop", () => {
    const r = stream(["\nUser:"], ["Hi", " there\n", "Us", "ually", " yes"]);
    expect(r.out).toEqual(["Hi", " there", "", "\nUsually", " yes"]);
    expect(r.stopped).toBe(false);
    expect(r.rest).toBe("");
  });

  it("match across token boundaries and drop the stop string and what follows", () => {
    const r = stream(["\nUser:"], ["Sure.", "\nUs", "er: next", " more"]);
    expect(r.out).toEqual(["Sure.", "", ""]);
    expect(r.stopped).toBe(true);
  });

  it("the earliest of several stop strings wins, with the text before it in the same piece", () => {
    const r = stream(["END", "stop"], ["a stop then END"]);
    expect(r.out).toEqual(["a "]);
    expect(r.stopped).toBe(true);
  });

  it("never emits text that is later retracted", () => {
    // Every streamed prefix must be a prefix of the final text.
    const pieces = ["ab", "c", "ab", "cab", "d", "x"];
    const r = stream(["abd"], pieces);
    expect(r.stopped).toBe(true);
    expect(r.out.join("")).toBe("abcabc");
  });

  it("flush returns held text when generation ends otherwise", () => {
    const r = stream(["###"], ["done #", "#"]);
    expect(r.out.join("")).toBe("done ");
    expect(r.rest).toBe("##");
  });

  it("rejects empty stop strings", () => {
    expect(() => new StopStringFilter([""])).toThrow("stopStrings[0] must be a non-empty string");
  });
});

describe("StopChecker", () => {
  it("ends with 'length' after maxTokens, releasing held text", () => {
    const c = new StopChecker({ maxTokens: 2, stopStrings: ["xyz"] });
    expect(c.step(5, "ab")).toEqual({ text: "ab" });
    expect(c.step(6, " x")).toEqual({ text: " x", finish: "length" });
    expect(c.finishReason).toBe("length");
    expect(() => c.step(7, "z")).toThrow("step after generation finished (length)");
  });

  it("ends with 'stop' on a stop token (its text is not emitted) or a stop string", () => {
    const byToken = new StopChecker({ maxTokens: 10, stopTokenIds: [2], stopStrings: ["\n\n"] });
    expect(byToken.step(9, "Hello\n")).toEqual({ text: "Hello" });
    expect(byToken.step(2, "</s>")).toEqual({ text: "\n", finish: "stop" });
    expect(byToken.isStopToken(2)).toBe(true);

    const byString = new StopChecker({ maxTokens: 10, stopStrings: ["\n\n"] });
    expect(byString.step(9, "Hello\n")).toEqual({ text: "Hello" });
    expect(byString.step(9, "\nmore")).toEqual({ text: "", finish: "stop" });
  });

  it("end() releases held text when the caller stops (context full)", () => {
    const c = new StopChecker({ maxTokens: 10, stopStrings: ["<|end|>"] });
    expect(c.step(1, "ok <|")).toEqual({ text: "ok " });
    expect(c.end("length")).toEqual({ text: "<|", finish: "length" });
  });

  it("validates its parameters", () => {
    expect(() => new StopChecker({ maxTokens: 0 })).toThrow("maxTokens must be an integer >= 1, got 0");
    expect(() => new StopChecker({ maxTokens: 1, stopTokenIds: [-1] })).toThrow("stopTokenIds: -1 is not a token id");
  });
});
