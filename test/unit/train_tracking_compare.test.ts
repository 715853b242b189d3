// train_tracking_compare.test.ts: the A/B arithmetic behind `kiln runs compare` and the axis ticks
// behind the SVG curves: only differing config fields, final and best by a metric's direction,
// steps both runs logged, and ticks that are round and cover the data.

import { describe, expect, it } from "vitest";
import { alignedSteps, betterDirection, configDiff, summarize } from "../../src/train/tracking/compare.js";
import { linearTicks, logTicks } from "../../src/train/tracking/svg_plot.js";

describe("configDiff", () => {
  it("lists only the fields that differ, by dotted path, with absent ones marked", () => {
    const a = { model: { layers: 4, dim: 128 }, optimizer: { lr: 1e-3, betas: [0.9, 0.99] }, seed: 1 };
    const b = { model: { layers: 4, dim: 128 }, optimizer: { lr: 3e-3, betas: [0.9, 0.95] }, warmup: 100, seed: 1 };
    expect(configDiff(a, b)).toEqual([
      { key: "optimizer.betas", a: "[0.9,0.99]", b: "[0.9,0.95]" },
      { key: "optimizer.lr", a: "0.001", b: "0.003" },
      { key: "warmup", a: undefined, b: "100" },
    ]);
    expect(configDiff(a, structuredClone(a))).toEqual([]);
  });
});

describe("summarize", () => {
  it("takes the best loss as the lowest finite value and the best throughput as the highest", () => {
    expect(betterDirection("eval_loss")).toBe("lower");
    expect(betterDirection("tokens_per_s")).toBe("higher");
    expect(betterDirection("lr")).toBeUndefined();
    const loss = [[0, 4], [10, Number.NaN], [20, 2.5], [30, 2.7]] as const;
    expect(summarize("loss", loss)).toEqual({ final: [30, 2.7], best: [20, 2.5] });
    expect(summarize("tokens_per_s", [[0, 10], [1, 30], [2, 20]])).toEqual({ final: [2, 20], best: [1, 30] });
    expect(summarize("lr", [[0, 1e-3]])).toEqual({ final: [0, 1e-3], best: undefined });
    expect(summarize("loss", [])).toEqual({ final: undefined, best: undefined });
  });
});

describe("alignedSteps", () => {
  it("pairs values at the steps both runs logged", () => {
    expect(alignedSteps([[0, 1], [5, 2], [10, 3]], [[0, 4], [10, 6], [15, 7]], 10)).toEqual([[0, 1, 4], [10, 3, 6]]);
  });

  it("spreads at most maxRows rows evenly, keeping the first and last common step", () => {
    const s = Array.from({ length: 101 }, (_, i) => [i, i] as const);
    const rows = alignedSteps(s, s, 5);
    expect(rows.map((r) => r[0])).toEqual([0, 25, 50, 75, 100]);
  });
});

describe("axis ticks", () => {
  it("linear ticks are round steps inside the range", () => {
    expect(linearTicks(0, 2000)).toEqual([0, 500, 1000, 1500, 2000]);
    expect(linearTicks(1.83, 4.21)).toEqual([2, 2.5, 3, 3.5, 4]);
  });

  it("log ticks are powers of ten over many decades and finer within few", () => {
    expect(logTicks(0.001, 100)).toEqual([0.001, 0.01, 0.1, 1, 10, 100]);
    expect(logTicks(0.5, 30)).toEqual([0.5, 1, 2, 5, 10, 20]);
    expect(logTicks(1.78, 4.2)).toEqual([2, 3, 4]);
  });
});
