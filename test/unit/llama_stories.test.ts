// stories260K (the bundled llama2.c model) on every backend present: the logits of the prompt
// "Once upon a time" match a float64 reference forward, and greedy generation gives llama2.c's
// reference continuation token for token (llama2.c `run -t 0 -n 64`: BOS + 4 prompt tokens + 60).

import { describe, expect, it } from "vitest";
import { getBackend, withRoutines } from "../../src/index.js";
import { builtinModel, loadModel } from "../../src/models/formats/load_model.js";
import { generate } from "../../src/models/generate.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { Llama } from "../../src/models/llama.js";
import { loadLlama2cTokenizer } from "../../src/models/tokenizers/index.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { argmax, fullLogits, relError, row } from "./llama_helpers.js";

const backends = await backendsUnderTest();
const cpu = await getBackend("cpu");

const REFERENCE =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. " +
  "She wanted to play with it, but it was too high.\nLily";
const PROMPT_IDS = [1, 403, 407, 261, 378]; // BOS, "Once upon a time"
const GREEDY_IDS = [
  432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
  426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267,
  414, 270, 333, 415, 426, 13, 438, 310,
];

const loaded = loadModel("stories260K");
const tokenizer = loadLlama2cTokenizer(builtinModel("stories260K")!.tokenizer, loaded.config.vocabSize);

describe("stories260K tokens", () => {
  it("the prompt and the reference text are these token ids", () => {
    expect(tokenizer.encode("Once upon a time")).toEqual(PROMPT_IDS);
    expect(tokenizer.decode([...PROMPT_IDS, ...GREEDY_IDS])).toBe(REFERENCE);
  });
});

for (const { name, backend, missing } of backends) describe.skipIf(!backend)(`stories260K on ${name}${skipLabel(noBackend(name, missing))}`, () => {
  it("logits of the prompt match the float64 reference within 1e-4", async () => {
    const ref = withRoutines(false, () => Llama.fromLoaded(loaded, cpu, { dtype: "f64", foldNorms: false, fuseQkv: false }));
    const want = await withRoutines(false, () => fullLogits(ref, PROMPT_IDS));
    const got = await fullLogits(Llama.fromLoaded(loaded, backend!), PROMPT_IDS);
    const V = loaded.config.vocabSize;
    for (let t = 0; t < PROMPT_IDS.length; t++) expect(relError(row(got, t, V), row(want, t, V))).toBeLessThan(1e-4);
  });

  it("greedy generation gives llama2.c's reference text", async () => {
    const lm = fromLoaded(loaded, backend!);
    const out: number[] = [];
    for await (const id of generate(lm, PROMPT_IDS, { maxTokens: 60, sample: argmax })) out.push(id);
    expect(out).toEqual(GREEDY_IDS);
    expect(tokenizer.decode([...PROMPT_IDS, ...out])).toBe(REFERENCE);
  }, 300_000);
});
