// `kiln train` with a Mixtral-style config (model.moe): a real process trains a tiny mixture of experts
// on the bundled TinyShakespeare, its loss falls, and each evaluation reports the routing (dropped
// assignments, load-balancing loss).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoFile } from "../helpers/fixtures.js";
import { events, train, writeConfig } from "./train_run_helpers.js";

describe("kiln train with model.moe", () => {
  it("kiln train: a tiny Mixtral on TinyShakespeare, loss falls", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-moe-"));
    try {
      const cfg = {
        model: { arch: "llama", nLayers: 1, nHeads: 2, dim: 32, blockSize: 32, moe: { numExperts: 4, topK: 2, capacityFactor: 1.25 } },
        data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
        train: { batchSize: 4, iters: 40, seed: 1 },
        optimizer: { kind: "adamw", lr: 1e-2, beta2: 0.99 },
        schedule: { kind: "cosine", warmupSteps: 4, decaySteps: 40, minLr: 1e-3 },
        eval: { interval: 40, batches: 2 },
        tracking: { enabled: false },
      };
      const r = await train(writeConfig(dir, "moe", cfg));
      expect(r.code, r.stderr).toBe(0);
      const steps = r.events.filter((e) => e.kind === "step").map((e) => e.loss!);
      expect(steps.length).toBe(40);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      // Starts near ln(65) = 4.17 (+ 0.01 * aux ~ 1); the last steps are well below.
      expect(mean(steps.slice(0, 3))).toBeGreaterThan(3.9);
      expect(mean(steps.slice(-5))).toBeLessThan(mean(steps.slice(0, 3)) - 0.8);
      const ev = r.events.find((e) => e.kind === "eval") as unknown as { loss: number; moe: { dropped: number; assignments: number; auxLoss: number } };
      expect(ev.loss).toBeLessThan(3.4);
      // The routing report of one held-out batch: 4 rows x 32 tokens x 2 choices x 1 layer.
      expect(ev.moe.assignments).toBe(256);
      expect(ev.moe.dropped).toBeGreaterThanOrEqual(0);
      expect(ev.moe.dropped).toBeLessThan(ev.moe.assignments * 0.5);
      expect(ev.moe.auxLoss).toBeGreaterThan(0.5);
      expect(ev.moe.auxLoss).toBeLessThan(4);
      console.log("kiln train MoE: first/last losses", steps.slice(0, 3), steps.slice(-5), "eval", ev);
      expect(events(r.stdout).find((e) => e.kind === "start")).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

});
