// A tiny character-level GPT-2 learns TinyShakespeare on cpu: after 60 AdamW steps its loss on a
// held-out slice falls from ln(vocab) to below the unigram entropy of the training text (the best a
// model that ignores context can do), so it has learned to use context. On every other backend present (webgpu on
// SwiftShader here), the first steps' losses match cpu's within f32 tolerance.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Backend } from "../../src/index.js";
import { getBackend } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { charVocab } from "../../src/train/char_vocab.js";
import { initParameters } from "../../src/train/init.js";
import { Trainer } from "../../src/train/trainer.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { repoFile } from "../helpers/fixtures.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";

const backends = await backendsUnderTest();
const cpu = await getBackend("cpu");
const TEXT = readFileSync(repoFile("data/tinyshakespeare/input.txt"), "utf8").slice(0, 30000);
const VOCAB = charVocab(TEXT);
const IDS = VOCAB.encode(TEXT);
const [B, T] = [4, 32];
const SPLIT = Math.floor(IDS.length * 0.9);

async function trainer(backend: Backend): Promise<Trainer> {
  const model = new Gpt2({ arch: "gpt2", dim: 32, nLayers: 2, nHeads: 2, vocabSize: VOCAB.chars.length, maxSeqLen: T, normEps: 1e-5 }, backend);
  await initParameters(model, { seed: 1 });
  return new Trainer(model, new RandomWindows(IDS.subarray(0, SPLIT), B, T, 1), {
    schedule: { kind: "cosine", lr: 2e-2, minLr: 2e-3, warmupSteps: 5, decaySteps: 60 },
    adamw: { beta2: 0.99, weightDecay: 0.1 },
    maxGradNorm: 1,
  });
}

/** Entropy (nats) of the token frequencies. */
function unigramEntropy(ids: Int32Array): number {
  const counts = new Map<number, number>();
  for (const i of ids) counts.set(i, (counts.get(i) ?? 0) + 1);
  return -[...counts.values()].reduce((s, c) => s + (c / ids.length) * Math.log(c / ids.length), 0);
}

describe("char-level GPT-2 on TinyShakespeare", () => {
  it("learns on cpu: held-out loss falls below the unigram entropy in 60 steps", async () => {
    const t = await trainer(cpu);
    const heldOut = new RandomWindows(IDS.subarray(SPLIT), 16, T, 2);
    const before = await t.evalLoss(heldOut);
    expect(before).toBeGreaterThan(Math.log(VOCAB.chars.length) - 0.2);
    for (let i = 0; i < 60; i++) await t.trainStep();
    const after = await t.evalLoss(heldOut);
    expect(after).toBeLessThan(before - 0.9);
    expect(after).toBeLessThan(unigramEntropy(IDS.subarray(0, SPLIT)) - 0.1);
  }, 120_000);

  for (const b of backends.filter((x) => x.name !== "cpu")) {
    it.skipIf(!b.backend)(`${b.name}: the first 3 steps' losses match cpu's${skipLabel(noBackend(b.name, b.missing))}`, async () => {
      const [c, g] = [await trainer(cpu), await trainer(b.backend!)];
      for (let i = 0; i < 3; i++) {
        const [sc, sg] = [await c.trainStep(), await g.trainStep()];
        expect(Math.abs(sc.loss - sg.loss)).toBeLessThan(1e-4 * Math.max(1, sc.loss));
        expect(Math.abs(sc.gradNorm - sg.gradNorm)).toBeLessThan(1e-3 * sc.gradNorm);
      }
    }, 300_000);
  }
});
