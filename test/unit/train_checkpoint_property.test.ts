// train_checkpoint_property.test.ts: properties of the checkpoint layer over generated inputs
// (fast-check): any state (tensor names, integer-like ones too, dtypes and shapes, any JSON config, rng and loader) loads back
// exactly as saved; any one flipped bit in any file the manifest covers is caught by verify, which
// names that file, and a resume then falls back to the previous checkpoint. (manifest.json itself
// has no checksum: a flip there either breaks it, which verify reports, or lands in its
// informational kilnVersion field.)

import { readFileSync, statSync, writeFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { latestGoodCheckpoint, loadCheckpoint, verifyCheckpoint, writeCheckpoint } from "../../src/train/checkpoint/index.js";
import type { CheckpointState, CheckpointTensor, Json } from "../../src/train/checkpoint/index.js";
import { scratch, tinyState } from "./train_checkpoint_helpers.js";

const { dir, done } = scratch();
afterAll(done);

const SIZE = { F32: 4, F16: 2, BF16: 2 } as const;
const tensor = (name: string): fc.Arbitrary<CheckpointTensor> =>
  fc
    .record({ dtype: fc.constantFrom("F32" as const, "F16" as const, "BF16" as const), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }) })
    .chain(({ dtype, shape }) => {
      const n = shape.reduce((a, b) => a * b, 1) * SIZE[dtype];
      return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => ({ name, dtype, shape, bytes }));
    });
const tensors = fc.uniqueArray(fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_.]{0,12}$/), fc.nat({ max: 20 }).map(String)), { maxLength: 4 }).chain((names) => fc.tuple(...names.map(tensor)));
// NOTE: JSON through its own round trip, so -0 is 0 on both sides, as it is in state.json.
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as Json);

const state: fc.Arbitrary<CheckpointState> = fc.record({
  step: fc.integer({ min: 0, max: 10_000_000 }),
  config: json,
  model: fc.record({ architecture: fc.constantFrom("llama", "gpt2"), tensors }),
  optimizer: fc.record({ tensors, state: json }),
  rng: json,
  loader: json,
});

describe("checkpoint properties", () => {
  it("any state loads back exactly as saved", async () => {
    await fc.assert(
      fc.asyncProperty(state, async (s) => {
        const got = loadCheckpoint(await writeCheckpoint(`${dir}/roundtrip`, s));
        expect(got).toEqual({
          ...s,
          model: { ...s.model, tensors: s.model.tensors.map((t) => ({ ...t, bytes: expect.any(Uint8Array) })) },
          optimizer: { ...s.optimizer, tensors: s.optimizer.tensors.map((t) => ({ ...t, bytes: expect.any(Uint8Array) })) },
        });
        for (const part of ["model", "optimizer"] as const) {
          got[part].tensors.forEach((t, i) => expect(Buffer.compare(t.bytes, s[part].tensors[i]!.bytes)).toBe(0));
        }
      }),
      { numRuns: 25 },
    );
  });

  it("any one flipped bit in a covered file is caught, naming the file; resume falls back", async () => {
    const root = `${dir}/flips`;
    await writeCheckpoint(root, tinyState(1));
    const newest = await writeCheckpoint(root, tinyState(2));
    const files = ["model.safetensors", "optimizer.safetensors", "state.json"];
    const flip = fc.constantFrom(...files).chain((file) =>
      fc.record({ file: fc.constant(file), at: fc.nat({ max: statSync(`${newest}/${file}`).size - 1 }), bit: fc.integer({ min: 0, max: 7 }) }),
    );
    fc.assert(
      fc.property(flip, ({ file, at, bit }) => {
        const path = `${newest}/${file}`;
        const original = readFileSync(path);
        const damaged = Buffer.from(original);
        damaged[at]! ^= 1 << bit;
        writeFileSync(path, damaged);
        try {
          const report = verifyCheckpoint(newest);
          expect(report.ok).toBe(false);
          expect(report.problems.join("\n")).toContain(`${file}: sha256`);
          expect(latestGoodCheckpoint(root, () => undefined)?.step).toBe(1);
        } finally {
          writeFileSync(path, original);
        }
      }),
      { numRuns: 40 },
    );
    expect(verifyCheckpoint(newest).ok).toBe(true);
  });
});
