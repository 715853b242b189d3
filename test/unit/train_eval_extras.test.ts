// What a run shows besides the losses: samples at evaluation (sample_text.ts: greedy equals the argmax
// of an unpadded forward, token by token; sampling is seeded; recorded in the runs database), the
// held-out loss of a run stopped between evaluations (the last evaluation's, with its step, or none),
// and the terminal progress bar's line (step, loss, lr, tokens/s, ETA without the compiling first step).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { runsCommand } from "../../src/cli/runs_command.js";
import { ProgressBar, formatDuration, progressLine } from "../../src/cli/train_progress.js";
import { getBackend, noGrad, tensor } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { charVocab } from "../../src/train/char_vocab.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { initParameters } from "../../src/train/init.js";
import type { RunEvent } from "../../src/train/run.js";
import { runTrackedTraining } from "../../src/train/run_tracking.js";
import { sampleText } from "../../src/train/sample_text.js";
import { RunStore } from "../../src/train/tracking/run_store.js";
import { repoFile } from "../helpers/fixtures.js";
import { sqliteMissing } from "../helpers/requirements.js";

const cpu = await getBackend("cpu");
const dir = mkdtempSync(join(tmpdir(), "kiln-eval-extras-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vocab = charVocab("abcdefgh ");
const codec = { encode: (t: string) => Array.from(vocab.encode(t)), decode: (ids: readonly number[]) => vocab.decode(ids) };
const model = new Gpt2({ arch: "gpt2", dim: 16, nLayers: 1, nHeads: 2, vocabSize: 9, maxSeqLen: 8, normEps: 1e-5 }, cpu);
await initParameters(model, { seed: 4 });

describe("sampleText", () => {

  it("greedy: each token is the argmax of the model's logits on the text so far (unpadded), sliding past blockSize", async () => {
    const got = await sampleText(model, codec, 8, { prompt: "abc", tokens: 9, temperature: 0, seed: 1 });
    expect(got).toHaveLength(9);
    const ids = codec.encode("abc");
    for (let i = 0; i < 9; i++) {
      const ctx = ids.slice(-8);
      const logits = (await noGrad(() => model.forward(tensor(Int32Array.from(ctx), { backend: cpu, dtype: "i32", shape: [1, ctx.length] }))).data()) as Float32Array;
      const row = Array.from(logits.subarray((ctx.length - 1) * 9));
      ids.push(row.indexOf(Math.max(...row)));
    }
    expect(got).toBe(codec.decode(ids.slice(3)));
  }, 60_000);

  it("sampling with a temperature is seeded: same seed, same text; another seed, other text", async () => {
    const s = (seed: number) => sampleText(model, codec, 8, { prompt: "a", tokens: 24, temperature: 5, seed });
    const a = await s(1);
    expect(await s(1)).toBe(a);
    expect(await s(2)).not.toBe(a);
    await expect(sampleText(model, codec, 8, { prompt: "", tokens: 2, temperature: 0, seed: 1 })).rejects.toThrow(/encodes to no tokens/);
  }, 60_000);
});

describe("a run's samples and its last held-out loss", () => {
  const cfgJson = (db: string) => ({
    model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 },
    data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
    train: { batchSize: 2, iters: 20 },
    optimizer: { kind: "adamw", lr: 3e-3 },
    schedule: { kind: "constant" },
    eval: { interval: 3, batches: 1, sample: { prompt: "ROMEO:", tokens: 12 } },
    tracking: { db },
  });

  async function run(stopAfter: number, db: string) {
    const file = join(dir, "cfg.json");
    writeFileSync(file, JSON.stringify(cfgJson(db)));
    const cfg = parseTrainConfig(cfgJson(db), file);
    const stop = new AbortController();
    const events: RunEvent[] = [];
    const result = await runTrackedTraining(cfg, {
      backend: cpu, baseDir: dir, signal: stop.signal, ...(sqliteMissing() ? {} : { tracking: { db, name: "extras" } }),
      report: (e) => {
        events.push(e);
        if (e.kind === "step" && e.step >= stopAfter) stop.abort();
      },
    });
    return { events, result };
  }

  it("stopped at step 4, between evaluations: the held-out loss is step 3's, and step 3 has a sample", async () => {
    const db = join(dir, "runs.sqlite");
    const { events, result } = await run(4, db);
    expect(result.steps).toHaveLength(4);
    const evals = events.filter((e) => e.kind === "eval");
    expect(evals.map((e) => e.step)).toEqual([3]);
    expect(result.valStep).toBe(3);
    expect(result.valLoss).toBe((evals[0] as { loss: number }).loss);
    const samples = events.filter((e): e is Extract<RunEvent, { kind: "sample" }> => e.kind === "sample");
    expect(samples.map((e) => [e.step, e.prompt])).toEqual([[3, "ROMEO:"]]);
    expect([...samples[0]!.text]).toHaveLength(12); // char tokens: one character each
    if (!sqliteMissing()) {
      const store = RunStore.open(db);
      const id = store.find("extras").id;
      expect(store.samples(id)).toEqual([{ step: 3, prompt: "ROMEO:", text: samples[0]!.text }]);
      store.close();
      // `kiln runs show` prints the newest sample.
      const out: string[] = [];
      const log = vi.spyOn(console, "log").mockImplementation((m: unknown) => void out.push(String(m)));
      try {
        expect(await runsCommand.run(["show", "extras", "--db", db])).toBe(0);
      } finally {
        log.mockRestore();
      }
      expect(out.join("\n")).toContain(`sample at step 3: ${JSON.stringify("ROMEO:" + samples[0]!.text)}`);
    }
  }, 120_000);

  it("stopped before the first evaluation: no held-out loss (not NaN)", async () => {
    const { result } = await run(1, join(dir, "runs2.sqlite"));
    expect(result.steps).toHaveLength(1);
    expect(result.valLoss).toBeUndefined();
    expect(result.valStep).toBeUndefined();
  }, 60_000);
});

describe("progress bar", () => {
  const step = (s: number, ms: number) => ({ kind: "step", step: s, iters: 100, loss: 2.5 - s / 100, lr: 1e-3, gradNorm: 1, ms, lossScale: 1, skipped: false }) as const;

  it("shows step, bar, loss, lr, tokens/s and the ETA from the steps after the first", () => {
    expect(progressLine(step(25, 200), 100, 1000, 200)).toBe("step 25/100 [######------------------] loss 2.2500 | lr 1.00e-3 | 5000 tok/s | ETA 15s");
    expect(formatDuration(61_000)).toBe("1m01s");
    expect(formatDuration(7_260_000)).toBe("2h01m");
    const out: string[] = [];
    const bar = new ProgressBar({ write: (s: string) => out.push(s), columns: 200 }, 10, 512);
    bar.step(step(1, 5000)); // compiling: not in the rate
    bar.step(step(2, 100));
    bar.step(step(3, 300));
    expect(out[2]).toBe("\r\x1b[2K" + progressLine(step(3, 300), 10, 512, 200));
    expect(out[2]).toContain("2560 tok/s | ETA 1s");
    bar.print("step 3: held-out loss 2.0000 (1 batches)");
    expect(out.slice(3)).toEqual(["\r\x1b[2Kstep 3: held-out loss 2.0000 (1 batches)\n", progressLine(step(3, 300), 10, 512, 200)]);
    bar.end();
    expect(out.at(-1)).toBe("\n");
  });
});
