// golden_models.test.ts: kiln's GPT-2 and Llama, loaded from files with kiln's normal loaders, against
// logits that an independent implementation computed: PyTorch forwards written from the published
// architectures (test/fixtures/golden/reference.py, run by make_golden.py; see PROVENANCE.md there).
// Each model is stored twice, as a Hugging Face folder and as GGUF, with one set of logits: both
// loaders must reach the same function (for Llama the q/k rows differ: rotate_half order in the HF
// folder, interleaved in GGUF; for GPT-2 the linear weights are transposed). A second, smaller Llama
// has Llama 3.1's RoPE scaling, which GGUF stores only as llama.cpp's per-frequency divisors.
// Checked in float64 on cpu (tight: only summation order differs), in float32 on every backend
// present, and through the cached decode path on cpu.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { loadModel } from "../../src/models/formats/load_model.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { fromLoaded } from "../../src/models/language_model.js";
import type { CausalTransformer } from "../../src/models/language_model.js";
import { Llama } from "../../src/models/llama.js";
import type { LoadedModel } from "../../src/models/types.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { fixture } from "../helpers/fixtures.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { fullLogits, relError, row } from "./llama_helpers.js";

interface Golden {
  readonly vocab_size: number;
  readonly ids: number[][];
  /** Per sequence, (T, vocab) row-major, float64. */
  readonly logits: number[][];
  readonly torch_float32_max_abs_diff: number;
}

const golden = (name: string): Golden => JSON.parse(readFileSync(fixture(`golden/${name}`), "utf8")) as Golden;

const MODELS = [
  { name: "gpt2 (HF folder)", path: fixture("golden/gpt2-tiny-random"), golden: golden("gpt2_logits.json") },
  { name: "gpt2 (GGUF)", path: fixture("golden/gpt2-tiny-random.gguf"), golden: golden("gpt2_logits.json") },
  { name: "llama (HF folder, rotate_half q/k rows)", path: fixture("golden/llama-tiny-random"), golden: golden("llama_logits.json") },
  { name: "llama (GGUF, interleaved q/k rows)", path: fixture("golden/llama-tiny-random.gguf"), golden: golden("llama_logits.json") },
  { name: "llama3 RoPE scaling (HF folder, rope_scaling)", path: fixture("golden/llama3-rope-tiny-random"), golden: golden("llama3_rope_logits.json") },
  { name: "llama3 RoPE scaling (GGUF, rope_freqs.weight)", path: fixture("golden/llama3-rope-tiny-random.gguf"), golden: golden("llama3_rope_logits.json") },
];

// Tolerances are on relError: max |kiln - torch float64| / max |torch float64 logit| (logits reach ~7).
// NOTE: float64: kiln and PyTorch compute the same function in a different order; what is left is
// rounding: kiln measured 1e-15 to 2e-15 (2026-12-07). 1e-12 leaves room for that and nothing else:
// flipping the last mantissa bit of a single weight in a fixture file fails it (checked by hand).
// Llama runs in the file's layout: folding the norms rounds the folded weights to f32 once
// (llama_layout.ts), which would be a ~1e-7 error of its own.
const TOL_F64 = 1e-12;
// NOTE: float32: PyTorch's own float32 forward lands ~3e-7 (GPT-2) and ~8e-7 (Llama) from its float64
// one (torch_float32_max_abs_diff / scale in the JSON); kiln measured 3e-7 to 6e-7 on cpu and 6e-7 to
// 9e-7 on webgpu (SwiftShader), 2026-12-07. 1e-5 allows ~10x PyTorch's own float32 noise; a wrong
// RoPE layout, an ignored eps or theta, or GPT-2 with the erf GELU fail it (checked by hand).
const TOL_F32 = 1e-5;

// NOTE: on SwiftShader (webgpu without a GPU) each architecture's first forward compiles its
// pipelines for ~25 s on a 2-core machine; the default 60 s leaves too little room on a busy one.
const WEBGPU_TIMEOUT_MS = 240_000;

const cpu = await getBackend("cpu");

function checkGolden(got: ArrayLike<number>, want: readonly number[], tol: number): void {
  expect(got.length).toBe(want.length);
  expect(relError(got, want)).toBeLessThan(tol);
}

/** The model in the file's layout (no folded norms, no fused qkv) as float64. */
function f64Model(loaded: LoadedModel): CausalTransformer {
  return loaded.config.arch === "gpt2"
    ? Gpt2.fromLoaded(loaded, cpu, { dtype: "f64" })
    : Llama.fromLoaded(loaded, cpu, { dtype: "f64", foldNorms: false, fuseQkv: false });
}

describe.each(MODELS)("$name against PyTorch", ({ path, golden: g }) => {
  it("the golden file is what the fixture model needs", () => {
    const loaded = loadModel(path);
    expect(loaded.config.vocabSize).toBe(g.vocab_size);
    // NOTE: the tolerance above only makes sense if PyTorch's own f32 noise is well below it.
    const scale = Math.max(...g.logits.flat().map(Math.abs));
    expect(g.torch_float32_max_abs_diff / scale).toBeLessThan(TOL_F32 / 5);
  });

  it("float64 on cpu matches to rounding", async () => {
    const model = f64Model(loadModel(path));
    for (let s = 0; s < g.ids.length; s++) checkGolden(await fullLogits(model, g.ids[s]!), g.logits[s]!, TOL_F64);
  });

  it("the cached path (prefill, then decode steps) on cpu gives the golden rows", async () => {
    const lm = fromLoaded(loadModel(path), cpu);
    const V = g.vocab_size;
    for (let s = 0; s < g.ids.length; s++) {
      const ids = g.ids[s]!;
      lm.reset();
      checkGolden(await lm.forwardPrefill(ids.slice(0, 5)), row(g.logits[s]!, 4, V), TOL_F32);
      for (let t = 5; t < ids.length; t++) checkGolden(await lm.decodeStep(ids[t]!), row(g.logits[s]!, t, V), TOL_F32);
    }
  });
});

for (const { name, backend, missing } of await backendsUnderTest()) describe.skipIf(!backend)(`golden logits, float32 on ${name}${skipLabel(noBackend(name, missing))}`, () => {
  it.each(MODELS)("$name: the default inference layout matches PyTorch", async ({ path, golden: g }) => {
    const lm = fromLoaded(loadModel(path), backend!);
    for (let s = 0; s < g.ids.length; s++) checkGolden(await fullLogits(lm.model, g.ids[s]!), g.logits[s]!, TOL_F32);
  }, WEBGPU_TIMEOUT_MS);
});
