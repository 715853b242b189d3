// dist_health.test.ts: the heartbeat watcher's judgement (health/silence.ts) on readings built here, and
// the checks of its settings: a rank whose counter stands still past the limit is named once, with how
// long it was silent; a store that answers late (every counter moved at once) is not a silent rank; a rank
// that left on purpose or never beat is not judged; bad settings are named. In-process, no sockets: the
// real processes are launch_train.test.ts's.

import { describe, expect, it } from "vitest";
import { heartbeatTiming, LEFT, SilenceWatch } from "../../src/dist/index.js";

/** Rounds every `every` ms from t0, in which ranks in `quiet` (from their round on) stop counting. */
function feed(w: SilenceWatch, rounds: number, every: number, quietFrom: Readonly<Record<number, number>>) {
  const counts = new Array<number>(w.size).fill(0);
  const found = [];
  for (let i = 0; i < rounds; i++) {
    for (let r = 0; r < w.size; r++) if (quietFrom[r] === undefined || i < quietFrom[r]!) counts[r]!++;
    for (const s of w.observe(1_000_000 + i * every, counts)) found.push({ ...s, round: i });
  }
  return found;
}

describe("heartbeat silence", () => {
  it("names a rank whose counter stood still past the limit, once, with how long", () => {
    const w = new SilenceWatch(4, 0, 2000, 500);
    const found = feed(w, 20, 500, { 2: 6 });
    // Rank 2's last change was round 5 (t = 2500); past 2000 ms at round 10 (t = 5000 > 4500).
    expect(found).toEqual([{ rank: 2, silentMs: 2500, beats: 6, round: 10 }]);
  });

  it("a store that answers late (one long round, every counter moved) is no silence", () => {
    const w = new SilenceWatch(3, 1, 2000, 500);
    const counts = [1, 1, 1];
    expect(w.observe(1000, counts)).toEqual([]);
    // The store (rank 0's thread) answered nothing for 10 s; then everything had moved.
    expect(w.observe(11_000, [20, 21, 19])).toEqual([]);
    expect(w.observe(11_500, [21, 22, 20])).toEqual([]);
  });

  it("too few answered rounds in the silent time: not judged yet (the watcher's own view was stalled)", () => {
    const w = new SilenceWatch(2, 0, 2000, 500);
    expect(w.observe(1000, [1, 1])).toEqual([]);
    // Two rounds 5 s apart: rank 1 did not move, but the watcher saw only one round in that time.
    expect(w.observe(6000, [2, 1])).toEqual([]);
    expect(w.observe(6500, [3, 1])).toEqual([]);
    expect(w.observe(7000, [4, 1])).toEqual([]);
    expect(w.observe(7500, [5, 1])).toEqual([{ rank: 1, silentMs: 6500, beats: 1 }]);
  });

  it("a rank that left on purpose, one that never beat, and the watcher itself are not judged", () => {
    const w = new SilenceWatch(4, 3, 1000, 250);
    const found = [];
    for (let i = 0; i < 20; i++) found.push(...w.observe(1000 + i * 250, [i < 3 ? i + 1 : LEFT, 0, i + 1, 7]));
    expect(found).toEqual([]);
  });

  it("bad settings are named", () => {
    expect(() => new SilenceWatch(2, 0, 500, 500)).toThrow("the interval (500 ms) must be > 0 and below the silence limit (500 ms)");
    expect(() => new SilenceWatch(2, 0, 1000, 250).observe(1, [1])).toThrow("a reading of 1 counters for 2 ranks");
    expect(heartbeatTiming({})).toEqual({ intervalMs: 500, limitMs: 5000 });
    expect(heartbeatTiming({ KILN_HEARTBEAT_TIMEOUT_MS: "2000", KILN_HEARTBEAT_INTERVAL_MS: "250" })).toEqual({ intervalMs: 250, limitMs: 2000 });
    expect(() => heartbeatTiming({ KILN_HEARTBEAT_TIMEOUT_MS: "2s" })).toThrow('KILN_HEARTBEAT_TIMEOUT_MS="2s" is not a whole number of milliseconds >= 1');
    expect(() => heartbeatTiming({ KILN_HEARTBEAT_TIMEOUT_MS: "600" })).toThrow("KILN_HEARTBEAT_TIMEOUT_MS (600) must be at least twice KILN_HEARTBEAT_INTERVAL_MS (500)");
  });
});
