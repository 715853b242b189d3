// The short model-file fuzz CI runs: each reader of model_file_targets.ts (GGUF model and vocabulary,
// safetensors / Hugging Face folder and its index, llama2.c model and tokenizer, tokenizer.json) gets
// KILN_FUZZ_RUNS mutated real files (default 40) and must load each one or refuse it with an Error that
// names the file, within the time bound and without growing the process by more than the memory bound.
// The long run (10,000 cases per reader, figures in docs/fuzzing.md) is npm run fuzz:files.

import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { fuzzTargets, runCase } from "./model_file_targets.js";

const RUNS = Number(process.env.KILN_FUZZ_RUNS ?? 40);
const SEED = Number(process.env.KILN_FUZZ_SEED ?? 1);
/** CPU ms per case (CPU time: a shared CI machine stretches wall time). A reader that trusts a size takes minutes. */
const CASE_MS = 3000;
const GROWTH_MIB = 512;

const { targets, dispose } = fuzzTargets();
afterAll(dispose);

describe(`model-file fuzz (${RUNS} cases per reader, seed ${SEED})`, () => {
  it.each(targets.map((t) => [t.name, t] as const))("%s: loads or names the file in its error, quickly, in bounded memory", (_name, target) => {
    const baseline = process.memoryUsage.rss();
    let refused = 0;
    fc.assert(
      fc.property(target.input, (input) => {
        const cpu0 = process.cpuUsage();
        const o = runCase(target, input);
        const cpu = process.cpuUsage(cpu0);
        if (o.kind === "bad-error") throw new Error(`not an error naming ${target.names.join(" or ")}: ${o.error}`);
        if (o.kind === "refused") refused++;
        expect((cpu.user + cpu.system) / 1000).toBeLessThan(CASE_MS);
        expect((process.memoryUsage.rss() - baseline) / 2 ** 20).toBeLessThan(GROWTH_MIB);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The mutations damage: most files must be refused (a fuzz that only loads files tests nothing).
    expect(refused).toBeGreaterThan(RUNS / 4);
  });
});
