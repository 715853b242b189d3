// The scheduler's prefill-first policy (src/serve/prefill_first.ts): a request that arrives while others
// decode gets a step of its own prompt (so its first token does not wait for a step of every decode),
// the decodes run in the next step, never two prompt-only steps in a row, never while a running request
// is still in a chunked prompt; off by default. Every request still produces the tokens the fake runner
// defines (the policy changes the order of work, not the results).

import { describe, expect, it } from "vitest";
import { prefillOnlyStep } from "../../src/serve/prefill_first.js";
import { expectedOutput, setup } from "./serve_fake_runner.js";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const scheduledIds = (o: { numScheduledTokens: Readonly<Record<string, number>> }) => Object.keys(o.numScheduledTokens).sort();

describe("prefill first", () => {
  it("runs an arriving prompt alone, then the decodes with it; the same tokens as without the policy", () => {
    for (const prefillFirst of [true, false]) {
      const s = setup({ prefillFirst, maxNumBatchedTokens: 32 });
      s.add({ reqId: "a", promptTokenIds: range(1, 6), maxTokens: 8 });
      s.add({ reqId: "b", promptTokenIds: range(10, 15), maxTokens: 8 });
      expect(scheduledIds(s.step())).toEqual(["a", "b"]); // nothing runs yet: both prompts in one step
      expect(scheduledIds(s.step())).toEqual(["a", "b"]); // decodes
      s.add({ reqId: "c", promptTokenIds: range(20, 27), maxTokens: 8 });
      s.add({ reqId: "d", promptTokenIds: range(30, 33), maxTokens: 8 });
      const arrival = s.step();
      if (prefillFirst) {
        expect(scheduledIds(arrival)).toEqual(["c", "d"]);
        expect(arrival.numScheduledTokens).toEqual({ c: 7, d: 3 });
        expect(s.outputs.filter((o) => o.reqId === "c").flatMap((o) => o.newTokenIds)).toHaveLength(1); // its first token, from that step
        expect(scheduledIds(s.step())).toEqual(["a", "b", "c", "d"]); // then everyone decodes
      } else {
        expect(scheduledIds(arrival)).toEqual(["a", "b", "c", "d"]);
      }
      const done = s.finish();
      expect(done.get("a")!.tokens).toEqual(expectedOutput(range(1, 6), 8, 64));
      expect(done.get("c")!.tokens).toEqual(expectedOutput(range(20, 27), 8, 64));
      expect(done.get("d")!.tokens).toEqual(expectedOutput(range(30, 33), 8, 64));
    }
  });

  it("never runs two prompt-only steps in a row, so arrivals every step cannot starve the decodes", () => {
    const s = setup({ prefillFirst: true, maxNumSeqs: 16, maxNumBatchedTokens: 64 });
    s.add({ reqId: "r0", promptTokenIds: range(1, 4), maxTokens: 30 });
    s.step();
    const decodedSteps: number[] = [];
    for (let i = 1; i <= 8; i++) {
      s.add({ reqId: `r${i}`, promptTokenIds: range(100 + 4 * i, 103 + 4 * i), maxTokens: 30 });
      const o = s.step();
      if (o.numScheduledTokens.r0 !== undefined) decodedSteps.push(i);
    }
    // One arrival per step: prompt-only and mixed steps alternate, r0 decodes every other step.
    expect(decodedSteps).toEqual([2, 4, 6, 8]);
    s.finish();
  });

  it("decides from the scheduler's counts: on, requests both running and waiting, a free seat, no prompt in progress", () => {
    const base = { enabled: true, lastWasPrefillOnly: false, running: 4, waiting: 1, maxNumSeqs: 8, runningInPrompt: false };
    expect(prefillOnlyStep(base)).toBe(true);
    expect(prefillOnlyStep({ ...base, enabled: false })).toBe(false);
    expect(prefillOnlyStep({ ...base, lastWasPrefillOnly: true })).toBe(false);
    expect(prefillOnlyStep({ ...base, running: 0 })).toBe(false); // nothing to put off: the normal step is the same
    expect(prefillOnlyStep({ ...base, waiting: 0 })).toBe(false);
    expect(prefillOnlyStep({ ...base, running: 8 })).toBe(false); // no seat: the waiting request could not be admitted
    expect(prefillOnlyStep({ ...base, runningInPrompt: true })).toBe(false);
  });
});
