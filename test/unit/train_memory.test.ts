// Memory accounting (core/memory.ts) and activation offload (train/memory/): the accountant counts
// what realize and the trainer allocate, by category; offloading checkpointed inputs to disk leaves the
// training bit-identical, removes its files, and a failing write ends in a clear error.

import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getBackend, memoryAccountant, MEMORY_CATEGORIES, tensor, trackMemory } from "../../src/index.js";
import type { Backend } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { initParameters } from "../../src/train/init.js";
import { RandomWindows } from "../../src/train/batches.js";
import { Trainer } from "../../src/train/trainer.js";
import type { TrainingMemoryOptions } from "../../src/train/memory/training_memory.js";
import { DiskStore, HostStore, TieredStore } from "../../src/train/memory/store.js";
import { parseTrainConfig } from "../../src/train/config.js";

const cpu = await getBackend("cpu");
const TOKENS = Int32Array.from({ length: 400 }, (_, i) => (i * 5 + (i >> 2)) % 11);
const scratch = mkdtempSync(join(tmpdir(), "kiln-memtest-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function trainer(memory: TrainingMemoryOptions = {}, backend: Backend = trackMemory(cpu)) {
  const model = new Gpt2({ arch: "gpt2", dim: 16, nLayers: 2, nHeads: 2, vocabSize: 11, maxSeqLen: 8, normEps: 1e-5 }, backend);
  await initParameters(model, { seed: 2 });
  // NOTE: jit off: these tests look at what one step allocates (built each step); a capture holds its buffers.
  return new Trainer(model, new RandomWindows(TOKENS, 2, 8, 4), { schedule: { kind: "constant", lr: 1e-2 }, adamw: { weightDecay: 0.1 }, memory, jit: false });
}

describe("memory accounting", () => {
  it("a tracked backend counts an upload and its dispose; peak stays at the high-water mark", async () => {
    const backend = trackMemory(cpu);
    const acct = memoryAccountant(backend)!;
    expect(memoryAccountant(cpu)).toBeUndefined();
    const before = acct.snapshot().liveTotal;
    const t = acct.within("activations", () => tensor(new Float32Array(1000), { backend }));
    await t.realize();
    expect(acct.snapshot().live.activations).toBe(4000);
    t.dispose();
    const s = acct.snapshot();
    expect(s.live.activations).toBe(0);
    expect(s.liveTotal).toBe(before);
    expect(s.peak.activations).toBe(4000);
    expect(s.peakTotal).toBeGreaterThanOrEqual(before + 4000);
  });

  it("after a step: parameters = count x 4 bytes, AdamW state = 2 x that; peaks >= live; gradients and activations counted", async () => {
    const tr = await trainer();
    await tr.trainStep();
    await tr.trainStep();
    const s = tr.memory.snapshot()!;
    const paramBytes = tr.layout.size * 4;
    expect(s.live.parameters).toBe(paramBytes);
    expect(s.live.optimizer).toBe(2 * paramBytes);
    for (const c of MEMORY_CATEGORIES) expect(s.peak[c], c).toBeGreaterThanOrEqual(s.live[c]);
    // The optimizer writes the parameters in place (Tensor.assign): no second copy during the step.
    expect(s.peak.parameters).toBe(paramBytes);
    expect(s.peak.gradients).toBeGreaterThan(0);
    expect(s.peak.gradients).toBeLessThanOrEqual(paramBytes);
    expect(s.peak.activations).toBeGreaterThan(0);
    expect(s.peakTotal).toBeGreaterThanOrEqual(s.liveTotal);
  });
});

describe("activation offload", () => {
  async function losses(memory: TrainingMemoryOptions, steps = 3) {
    const tr = await trainer(memory);
    const out: number[] = [];
    for (let i = 0; i < steps; i++) out.push((await tr.trainStep()).loss);
    return { losses: out, params: (await tr.state()).params, offloaded: tr.memory.offloader?.offloadedBytes ?? 0 };
  }

  it("to disk: bit-identical to keeping the inputs on the device, and its files are gone after each step", async () => {
    const dir = join(scratch, "disk");
    const store = new DiskStore(dir);
    const base = await losses({ activationCheckpointing: "layer" });
    const plain = await losses({});
    const off = await losses({ activationCheckpointing: "layer", offload: store });
    expect(off.losses).toEqual(base.losses);
    expect(off.losses).toEqual(plain.losses);
    expect(Buffer.from(off.params.buffer).equals(Buffer.from(base.params.buffer))).toBe(true);
    // Two blocks' inputs (B*T, dim) f32 per step.
    expect(off.offloaded).toBe(3 * 2 * 2 * 8 * 16 * 4);
    expect(readdirSync(dir)).toEqual([]);
    expect(store.held).toEqual({ host: 0, disk: 0 });
    store.close();
  });

  it("host with a small budget spills the rest to disk, and still trains identically", async () => {
    const store = new TieredStore(new HostStore(), new DiskStore(join(scratch, "tier")), 2 * 8 * 16 * 4);
    const seen: { host: number; disk: number }[] = [];
    const put = store.put.bind(store);
    store.put = (k, b) => { put(k, b); seen.push({ ...store.held }); };
    const base = await losses({ activationCheckpointing: "layer" }, 2);
    const off = await losses({ activationCheckpointing: "layer", offload: store }, 2);
    expect(off.losses).toEqual(base.losses);
    expect(seen[1]).toEqual({ host: 1024, disk: 1024 });
    store.close();
  });

  it("a full disk (injected ENOSPC) ends the step with a clear error and leaves no file", async () => {
    const dir = join(scratch, "full");
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    const fs = { writeFileSync: () => { throw enospc; }, readFileSync: () => new Uint8Array(0), unlinkSync: () => {} };
    const tr = await trainer({ activationCheckpointing: "layer", offload: new DiskStore(dir, fs) });
    await expect(tr.trainStep()).rejects.toThrow(/activation offload: cannot write 1024 bytes to .*act-0\.bin: the disk is full \(ENOSPC\)/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a store made without a folder removes its own on close", () => {
    const s = new DiskStore();
    s.put("a", new Uint8Array(8));
    expect(existsSync(s.dir)).toBe(true);
    s.close();
    expect(existsSync(s.dir)).toBe(false);
  });

  it("offload without checkpointing is refused, naming the fix", async () => {
    await expect(trainer({ offload: new HostStore() })).rejects.toThrow(/memory.offload moves the inputs of checkpointed blocks: set memory.activationCheckpointing/);
  });
});

describe("memory config", () => {
  const cfg = (memory: unknown) => ({
    model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 }, data: { path: "x.txt" }, train: { batchSize: 2, iters: 2 },
    optimizer: { kind: "adamw", lr: 1e-3 }, schedule: { kind: "constant" }, memory,
  });
  it("accepts each granularity and offload tier", () => {
    for (const m of ["none", "layer", "attention", { every: 3 }]) expect(parseTrainConfig(cfg({ activationCheckpointing: m }), "c.json").memory!.activationCheckpointing).toEqual(m);
    expect(parseTrainConfig(cfg({ activationCheckpointing: "layer", offload: { to: "host", hostBytes: 1 << 20 } }), "c.json").memory!.offload).toEqual({ to: "host", hostBytes: 1 << 20 });
  });
  it("names an invalid value and what is allowed", () => {
    expect(() => parseTrainConfig(cfg({ activationCheckpointing: "layers" }), "c.json")).toThrow(/memory.activationCheckpointing: must be "none", "layer", "attention" or \{ "every": k \}/);
    expect(() => parseTrainConfig(cfg({ activationCheckpointing: { every: 0 } }), "c.json")).toThrow(/memory.activationCheckpointing.every/);
    expect(() => parseTrainConfig(cfg({ offload: { to: "nvme" } }), "c.json")).toThrow(/memory.offload.to: .*"host"\|"disk"/);
  });
});

describe("a configured run", () => {
  it("reports memory by category at each evaluation, and checkpoints layers when the config says so", async () => {
    const { runTraining } = await import("../../src/train/run.js");
    const { repoFile } = await import("../helpers/fixtures.js");
    const cfg = parseTrainConfig({
      model: { arch: "gpt2", nLayers: 2, nHeads: 2, dim: 16, blockSize: 16 },
      data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
      train: { batchSize: 2, iters: 4 }, optimizer: { kind: "adamw", lr: 1e-3 }, schedule: { kind: "constant" },
      eval: { interval: 2, batches: 1 }, memory: { activationCheckpointing: "layer", offload: { to: "disk", dir: "off" } },
    }, "c.json");
    const events: { kind: string; step?: number; memory?: { live: Record<string, number>; peak: Record<string, number> } }[] = [];
    const r = await runTraining(cfg, { backend: cpu, baseDir: scratch, report: (e) => void events.push(e as never) });
    const mem = events.filter((e) => e.kind === "memory");
    expect(mem.map((e) => e.step)).toEqual([2, 4]);
    expect(mem[1]!.memory!.live.parameters).toBe(r.params * 4);
    expect(mem[1]!.memory!.live.optimizer).toBe(r.params * 8);
    expect(mem[1]!.memory!.peak.activations).toBeGreaterThan(0);
    expect(readdirSync(join(scratch, "off"))).toEqual([]);
  });
});
