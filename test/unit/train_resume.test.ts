// Kill-and-resume of `kiln train` as a user meets it, through the launcher on cpu (issue 10's Done-when):
// a run SIGKILLed after it wrote a checkpoint, resumed with --resume, gives the uninterrupted run's
// losses bit for bit (JSON numbers round-trip the f32 losses exactly); a corrupted newest checkpoint
// is skipped with a warning and the run goes on from the one before, with the same losses; a
// checkpoint of another model config is refused. Tiny models (1 layer, 16 wide) keep each run to seconds;
// train_resume_shards.test.ts has the data-loader and SIGTERM cases.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ITERS, after, losses, scratch, tiny, train, trainUntil, writeConfig } from "./train_run_helpers.js";

const { dir, done } = scratch();
afterAll(done);
describe("kiln train: kill and resume", () => {
  const straightDir = join(dir, "straight");
  let straight: Map<string, number>;

  it("a run killed after a checkpoint and resumed gives the uninterrupted losses bit for bit", async () => {
    const a = await train(writeConfig(dir, "straight", tiny(straightDir)));
    expect(a.code, a.stderr).toBe(0);
    straight = losses(a.events);
    expect(straight.size).toBe(ITERS + ITERS / 8);

    const cfg = writeConfig(dir, "killed", tiny(join(dir, "killed")));
    const killed = await trainUntil(cfg, (evs) => evs.some((e) => e.kind === "checkpoint"), "SIGKILL");
    expect(killed.signal).toBe("SIGKILL");
    const lastStep = Math.max(...killed.events.filter((e) => e.kind === "step").map((e) => e.step));
    expect(lastStep).toBeLessThan(ITERS);
    const seen = killed.events.find((e) => e.kind === "checkpoint")!.step;

    const resumed = await train(cfg, "--resume");
    expect(resumed.code, resumed.stderr).toBe(0);
    const from = resumed.events.find((e) => e.kind === "resume")!.step;
    // The killed run may have finished a later checkpoint after the one it reported.
    expect(from).toBeGreaterThanOrEqual(seen);
    const got = losses(resumed.events);
    expect(Math.min(...resumed.events.filter((e) => e.kind === "step").map((e) => e.step))).toBe(from + 1);
    expect([...got]).toEqual(after(straight, from));
    expect(got.size).toBeGreaterThan(0);
  }, 60_000);

  it("a corrupted newest checkpoint falls back to the previous one with a warning, and the curve is the same", async () => {
    expect(straight).toBeDefined();
    const newest = join(straightDir, `step-0000${ITERS}`, "model.safetensors");
    const bytes = readFileSync(newest);
    bytes[bytes.length - 5]! ^= 0x40;
    writeFileSync(newest, bytes);
    const r = await train(writeConfig(dir, "straight", tiny(straightDir)), "--resume");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`skipping .*step-0000${ITERS}, corrupted or incomplete: .*model\\.safetensors`));
    expect(r.stderr).toMatch(new RegExp(`resuming from .*step-0000${ITERS - 2} \\(step ${ITERS - 2}\\), the newest good checkpoint; 1 newer one was skipped`));
    expect(r.events.find((e) => e.kind === "resume")!.step).toBe(ITERS - 2);
    expect([...losses(r.events)]).toEqual(after(straight, ITERS - 2));
  }, 60_000);

  it("a checkpoint of another model config is refused with a clear error", async () => {
    const r = await train(writeConfig(dir, "wider", tiny(straightDir, { dim: 32 })), "--resume");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step-0000\d\d is a checkpoint of another model: shapes differ: token_embd\.weight is \[\d+, 16\] in the checkpoint, \[\d+, 32\] in the model/);
    expect(r.events.some((e) => e.kind === "step")).toBe(false);
  }, 60_000);

});
