// GPT-2 with random weights on every backend present: the cached path (prefill, then jit-replayed
// decode steps) gives the logits of a full non-cached forward, which matches the float64 reference.

import { describe, expect, it } from "vitest";
import { getBackend, withRoutines } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import type { Gpt2Config } from "../../src/models/types.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { countingBackend, fullLogits, relError, row } from "./llama_helpers.js";

const backends = await backendsUnderTest();
const cpu = await getBackend("cpu");

const CONFIG: Gpt2Config = { arch: "gpt2", dim: 32, nLayers: 2, nHeads: 4, vocabSize: 50, maxSeqLen: 12, normEps: 1e-5 };
const IDS = [0, 17, 3, 49, 8, 21, 5];
const TOL = 1e-4;

for (const { name, backend: b, missing } of backends) describe.skipIf(!b)(`gpt2 on ${name}${skipLabel(noBackend(name, missing))}`, () => {
  it("cached decode equals the full forward, which equals the float64 reference", async () => {
    const loaded = randomLoadedModel(CONFIG, 2);
    const { backend, builds } = countingBackend(b!);
    const lm = fromLoaded(loaded, backend);
    const full = await fullLogits(lm.model, IDS);
    const ref = withRoutines(false, () => Gpt2.fromLoaded(loaded, cpu, { dtype: "f64" }));
    expect(relError(full, await withRoutines(false, () => fullLogits(ref, IDS)))).toBeLessThan(TOL);
    const V = CONFIG.vocabSize;
    expect(relError(await lm.forwardPrefill(IDS.slice(0, 3)), row(full, 2, V))).toBeLessThan(TOL);
    expect(relError(await lm.decodeStep(IDS[3]!), row(full, 3, V))).toBeLessThan(TOL);
    const afterFirst = builds();
    for (let t = 4; t < IDS.length; t++) expect(relError(await lm.decodeStep(IDS[t]!), row(full, t, V))).toBeLessThan(TOL);
    expect(builds()).toBe(afterFirst);
  });
});

describe("gpt2 (cpu)", () => {
  it("uses a separate output head when the file has one", async () => {
    const loaded = randomLoadedModel(CONFIG, 4);
    const tensors = new Map(loaded.tensors);
    const embd = loaded.tensors.get("token_embd.weight")!;
    // The head = the embedding scaled by 2: logits double.
    tensors.set("output.weight", { ...embd, read: () => { const h = embd.read(); return { ...h, data: Float32Array.from(h.data, (x) => 2 * x) }; } });
    const tied = await fullLogits(Gpt2.fromLoaded(loaded, cpu), IDS);
    const separate = await fullLogits(Gpt2.fromLoaded({ ...loaded, tensors }, cpu), IDS);
    expect(relError(separate, tied.map((x) => 2 * x))).toBeLessThan(1e-6);
  });
});
