// bench/train.ts's pure sections: the planner's formula for each setting (or why there is none), the
// differences it names, and the markdown table, from measurements given here (the training itself is
// what `npm run bench:train` runs; train_checkpointing.test.ts covers it).

import { describe, expect, it } from "vitest";
import { differences, plannerSection, renderMarkdown, SETTINGS } from "../../bench/train.js";
import type { Measured } from "../../bench/train.js";
import { machineInfo } from "../../bench/lib/machine.js";

const peak = (activations: number) => ({ parameters: 2 << 20, gradients: 1 << 20, optimizer: 4 << 20, activations, workspace: 0 });
const measured: Measured[] = SETTINGS.map((s, i) => ({
  setting: s.name, stepMs: 100 + i, stepsMs: [100 + i], peak: peak((10 - i) << 20), peakTotal: 20 << 20, losses: [3.5], offloadedBytesPerStep: s.offload ? 1024 : 0,
}));

describe("bench:train sections", () => {
  it("the planner gives a formula for none and full checkpointing only, and says why not for the rest", () => {
    const p = plannerSection(65);
    const none = p.find((x) => x.setting === "none")!.formula;
    const layer = p.find((x) => x.setting === "layer")!.formula;
    if ("none" in none || "none" in layer) throw new Error("expected formulas for none and layer");
    expect(layer.activations).toBeLessThan(none.activations);
    expect(none.weights).toBe(none.grads); // fp32: 4 bytes each per parameter
    expect(p.find((x) => x.setting === "every-2")!.formula).toEqual({ none: "the planner models full checkpointing (every layer) only" });
    expect(p.find((x) => x.setting.includes("offload"))!.formula).toMatchObject({ none: expect.stringMatching(/optimizer state/) });
  });

  it("names each difference with both numbers, and renders one row per setting", () => {
    const planned = plannerSection(65);
    const notes = differences(measured, planned);
    expect(notes).toHaveLength(SETTINGS.length);
    expect(notes[0]).toMatch(/^none: activations measured 10\.00 MiB vs formula [\d.]+ MiB/);
    expect(notes.find((n) => n.startsWith("attention"))).toMatch(/against none's 10\.00 MiB/);
    const md = renderMarkdown({ date: "2026-12-07T00:00:00Z", machine: machineInfo(), backend: "cpu", config: { nLayers: 4, nHeads: 4, dim: 128, blockSize: 64, batchSize: 12, vocabSize: 65, steps: 1 }, measured, planned, differences: notes });
    for (const s of SETTINGS) expect(md).toContain(`| ${s.name} | `);
    expect(md).toContain("2026-12-07T00:00:00Z");
  });
});
