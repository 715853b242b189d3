// train_data_loader.test.ts: the data loader (src/train/data/loader.ts) over shards whose token i is
// i itself, so every row shows where its window starts. Rows are contiguous windows with targets shifted
// by one, also across shard boundaries; random batches depend on (seed, rank, step) only; sequential
// ranks never share a window within an epoch; restore() continues with exactly the batches an
// uninterrupted run sees; prefetch hides read latency and next() reports the time it waited.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLoader, openShards, type DataLoader, type LoaderOptions, type ShardSet } from "../../src/train/data/index.js";
import { permute } from "../../src/train/data/sampler.js";
import { writeIdentityShards } from "./train_data_helpers.js";

const root = mkdtempSync(join(tmpdir(), "kiln-loader-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const N = 20_000;
const DIR = writeIdentityShards(root, "ident", N, 1500);

async function take(loader: DataLoader, steps: number): Promise<{ x: number[]; y: number[]; epoch: number; step: number }[]> {
  const out = [];
  for (let i = 0; i < steps; i++) {
    const b = await loader.next();
    out.push({ x: [...b.x], y: [...b.y], epoch: b.epoch, step: b.step });
  }
  return out;
}

async function batches(o: Omit<LoaderOptions, "source">, steps: number, source: string | ShardSet = DIR) {
  const loader = await createLoader({ source, ...o });
  try {
    return await take(loader, steps);
  } finally {
    await loader.close();
  }
}

/** The first token of each row of x. */
const rowStarts = (x: number[], T: number) => x.filter((_, i) => i % T === 0);

describe("data loader", () => {
  it("random mode: rows are windows of consecutive tokens (across shard files), targets shifted by one, seeded by (seed, rank, step)", async () => {
    const B = 8, T = 64;
    const a = await batches({ batchSize: B, blockSize: T, seed: 7 }, 20);
    for (const { x, y } of a) {
      expect(x).toHaveLength(B * T);
      for (let r = 0; r < B; r++) {
        const s = x[r * T]!;
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s + T).toBeLessThanOrEqual(N - 1);
        for (let t = 0; t < T; t++) {
          expect(x[r * T + t]).toBe(s + t);
          expect(y[r * T + t]).toBe(s + t + 1);
        }
      }
    }
    const starts = a.flatMap((b) => rowStarts(b.x, T));
    expect(starts.some((s) => Math.floor(s / 1500) !== Math.floor((s + T) / 1500))).toBe(true); // some rows cross a shard boundary
    expect(new Set(starts).size).toBeGreaterThan(150); // 160 draws from ~20k offsets
    expect(await batches({ batchSize: B, blockSize: T, seed: 7 }, 20)).toEqual(a);
    expect((await batches({ batchSize: B, blockSize: T, seed: 8 }, 1))[0]!.x).not.toEqual(a[0]!.x);
    expect((await batches({ batchSize: B, blockSize: T, seed: 7, rank: 1, worldSize: 2 }, 1))[0]!.x).not.toEqual(a[0]!.x);
  });

  it("sequential mode: within an epoch the ranks' windows are disjoint and cover all full steps; the order changes per epoch", async () => {
    const B = 4, T = 50, W = 3;
    const windows = Math.floor((N - 1) / T); // 399
    const steps = Math.floor(windows / (B * W)); // 33
    const perRank = await Promise.all([0, 1, 2].map((rank) => batches({ batchSize: B, blockSize: T, seed: 3, rank, worldSize: W, mode: "sequential" }, steps + 1)));
    const epoch0 = perRank.flatMap((bs) => bs.slice(0, steps).flatMap((b) => rowStarts(b.x, T)));
    expect(epoch0).toHaveLength(steps * B * W);
    expect(new Set(epoch0).size).toBe(epoch0.length);
    for (const s of epoch0) expect(s % T).toBe(0);
    expect(Math.max(...epoch0)).toBeLessThanOrEqual((windows - 1) * T);
    for (const bs of perRank) {
      expect(bs[steps - 1]).toMatchObject({ epoch: 0, step: steps - 1 });
      expect(bs[steps]).toMatchObject({ epoch: 1, step: 0 });
    }
    expect(perRank[0]![steps]!.x).not.toEqual(perRank[0]![0]!.x);
    const plain = await batches({ batchSize: B, blockSize: T, mode: "sequential", shuffle: false }, 2);
    expect(rowStarts(plain[1]!.x, T)).toEqual([4, 5, 6, 7].map((w) => w * T));
  });

  it("the per-epoch permutation is a bijection", () => {
    for (const n of [1, 2, 5, 1000, 4097]) {
      const seen = new Set(Array.from({ length: n }, (_, i) => permute(i, n, 42, 3)));
      expect(seen.size).toBe(n);
      expect(Math.max(...seen)).toBe(n - 1);
    }
    const a = Array.from({ length: 50 }, (_, i) => permute(i, 1000, 42, 3));
    expect(Array.from({ length: 50 }, (_, i) => permute(i, 1000, 42, 4))).not.toEqual(a);
  });

  it("restore() continues with the batches of the uninterrupted run, across an epoch boundary too", async () => {
    for (const mode of ["random", "sequential"] as const) {
      const o = { batchSize: 16, blockSize: 100, seed: 11, mode, prefetch: 3 };
      const whole = await batches(o, 20); // sequential: 12 steps per epoch, so this crosses into epoch 1
      const first = await createLoader({ source: DIR, ...o });
      await take(first, 9);
      const saved = JSON.parse(JSON.stringify(first.state()));
      await first.close();
      expect(saved).toMatchObject({ epoch: 0, step: 9, seed: 11, mode });
      const resumed = await createLoader({ source: DIR, ...o });
      await take(resumed, 2); // batches it prefetched and read before restoring are dropped
      resumed.restore(saved);
      expect(await take(resumed, 11)).toEqual(whole.slice(9));
      await resumed.close();
    }
  });

  it("restore() refuses a position from another configuration or other data", async () => {
    const loader = await createLoader({ source: DIR, batchSize: 4, blockSize: 32, seed: 1 });
    const state = loader.state();
    expect(() => loader.restore({ ...state, seed: 2 })).toThrow(/seed = 2, this loader 1/);
    expect(() => loader.restore({ ...state, data: "f".repeat(64) })).toThrow(/data = f+, this loader/);
    expect(() => loader.restore({ ...state, step: 1e9 })).toThrow(/not valid/);
    await loader.close();
    await expect(createLoader({ source: DIR, batchSize: 4, blockSize: 32, rank: 2, worldSize: 2 })).rejects.toThrow(/rank 2 is not in 0..1/);
    await expect(createLoader({ source: DIR, split: "val", batchSize: 4, blockSize: 100 })).rejects.toThrow(/100 tokens, fewer than one window/);
    await expect(createLoader({ source: DIR, batchSize: 400, blockSize: 50, mode: "sequential" })).rejects.toThrow(/cannot fill one step/);
    await expect(createLoader({ source: join(root, "missing"), batchSize: 1, blockSize: 1 })).rejects.toThrow(/no such shard folder/);
  });

  it("prefetch reads ahead while the step computes; next() reports the time it waited", async () => {
    const base = await openShards(DIR);
    const slow: ShardSet = { ...base, readTokens: (s, a, n) => new Promise((r) => setTimeout(r, 60)).then(() => base.readTokens(s, a, n)) };
    const run = async (prefetch: number) => {
      const loader = await createLoader({ source: slow, batchSize: 2, blockSize: 8, prefetch });
      const waits: number[] = [];
      await loader.next(); // the first batch always waits
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 120)); // the "step", longer than a read
        waits.push((await loader.next()).waitMs);
      }
      const stats = loader.stats();
      expect(stats.batches).toBe(5);
      expect(stats.lastWaitMs).toBe(waits[3]);
      return waits;
    };
    const onDemand = await run(0);
    const ahead = await run(2);
    for (const w of onDemand) expect(w).toBeGreaterThanOrEqual(50);
    for (const w of ahead) expect(w).toBeLessThan(30);
    await base.close();
  });
});
