// Large cpu buffers live in the matmul kernel's shared wasm memory (wasm/resident_heap.ts), and the decode
// kernels read them in place. Checked in child processes (the heap and the thread count are per process):
// resident and copied-in (KILN_CPU_RESIDENT=0) products give the same bits at 1 and 2 threads and match
// f64; the resident runs really read in place; freed blocks are reused (100 load/free cycles do not grow
// the heap); a view outlives its dropped parent; a full heap falls back to buffers of their own with the
// same results and without the untouched heap costing resident memory. And the allocator on its own.

import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProcess } from "../helpers/kiln_cli.js";
import { ResidentHeap, SLACK } from "../../src/backends/cpu/wasm/resident_heap.js";

const CHILD = fileURLToPath(new URL("./cpu_resident_child.ts", import.meta.url));

interface ChildResult {
  threads: number;
  resident: boolean;
  residentWeights: boolean[];
  passes: { resident: number; copied: number; packedResident: number };
  sha256: string;
  maxRelErr: Record<string, number>;
  reuse: { before: number; after: number };
  viewOk: boolean;
  viewResident: boolean;
  full?: { residentAfter: boolean; sameBits: boolean; rssBeforeKiB: number; rssFullKiB: number; heapExtent: number };
}

async function child(env: Record<string, string>): Promise<ChildResult> {
  const clean = { ...process.env };
  for (const name of ["KILN_THREADS", "KILN_CPU_THREADS", "KILN_CPU_RESIDENT", "KILN_RESIDENT_FILL"]) delete clean[name];
  const r = await runProcess(process.execPath, ["--expose-gc", "--import", "tsx", CHILD], { env: { ...clean, ...env }, timeoutMs: 110_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ChildResult;
}

describe("cpu buffers resident in the kernel memory", () => {
  it("give the copied-in path's bits at 1 and 2 threads, reuse freed blocks, keep views alive, fall back when full", async () => {
    const [copied1, copied2, resident1, resident2] = await Promise.all([
      child({ KILN_THREADS: "1", KILN_CPU_RESIDENT: "0" }),
      child({ KILN_THREADS: "2", KILN_CPU_RESIDENT: "0" }),
      child({ KILN_THREADS: "1", KILN_CPU_RESIDENT: "1" }),
      child({ KILN_THREADS: "2", KILN_RESIDENT_FILL: "1" }),
    ]);
    expect([copied1.threads, copied2.threads, resident1.threads, resident2.threads]).toEqual([1, 2, 1, 2]);
    for (const c of [copied1, copied2]) {
      expect(c.resident).toBe(false);
      expect(c.residentWeights.some(Boolean)).toBe(false);
      expect(c.passes.resident + c.passes.packedResident).toBe(0);
    }
    for (const r of [resident1, resident2]) {
      expect(r.resident).toBe(true);
      expect(r.residentWeights.every(Boolean)).toBe(true);
      expect(r.passes.resident).toBeGreaterThanOrEqual(7); // 6 products with B (n, k), 1 with B (k, n)
      expect(r.passes.copied).toBe(0);
      expect(r.passes.packedResident).toBe(2);
      expect(r.sha256).toBe(copied1.sha256);
      // 100 cycles of 1 MiB, collected every 10: freed blocks come back (at most ~10 live between
      // collections, plus a few whose finalizers had not run yet), instead of 100 MiB of new heap.
      expect(r.reuse.after - r.reuse.before).toBeLessThan(24 << 20);
      expect(r.viewOk).toBe(true);
      expect(r.viewResident).toBe(true);
    }
    expect(copied2.sha256).toBe(copied1.sha256);
    // Against f64, relative to the largest |value|: f32 sums in f32; f16/bf16 outputs rounded to 11/8 bits.
    for (const r of [copied1, resident1]) {
      expect(r.maxRelErr.f32).toBeLessThan(1e-5);
      expect(r.maxRelErr.f32_kn).toBeLessThan(1e-5);
      expect(r.maxRelErr.f32_packed).toBeLessThan(1e-5);
      expect(r.maxRelErr.f16).toBeLessThan(1e-3);
      expect(r.maxRelErr.bf16).toBeLessThan(8e-3);
      expect(r.maxRelErr.q8_0).toBeLessThan(1e-5);
      expect(r.maxRelErr.q4_0).toBeLessThan(1e-5);
    }
    const full = resident2.full!;
    expect(full.heapExtent).toBeGreaterThan(3 * 2 ** 30 - (2 << 20));
    expect(full.residentAfter).toBe(false);
    expect(full.sameBits).toBe(true);
    // ~3 GiB of heap handed out but never written: the process's resident memory barely moves.
    expect(full.rssFullKiB - full.rssBeforeKiB).toBeLessThan(64 << 10);
  }, 150_000);

  it("allocates first fit, 64-byte aligned with slack, zeroes reused blocks, coalesces, refuses past its limit", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
    const heap = new ResidentHeap(memory, 65536, 64 * 65536);
    const a = heap.alloc(100)!;
    const b = heap.alloc(1000)!;
    const c = heap.alloc(64)!;
    expect(a).toBe(65536);
    expect([a, b, c].every((x) => x % 64 === 0)).toBe(true);
    expect(b - a).toBeGreaterThanOrEqual(100 + SLACK);
    expect(c - b).toBeGreaterThanOrEqual(1000 + SLACK);
    expect(memory.buffer.byteLength).toBeGreaterThanOrEqual(c + 64 + SLACK);
    expect(heap.owns(heap.sab())).toBe(true);
    expect(heap.owns(new SharedArrayBuffer(8))).toBe(false);
    new Uint8Array(heap.sab(), b, 1000).fill(9);
    heap.release(b);
    // First fit: a smaller block goes where b was, zeroed.
    const d = heap.alloc(500)!;
    expect(d).toBe(b);
    expect(new Uint8Array(heap.sab(), d, 500).every((x) => x === 0)).toBe(true);
    heap.release(a);
    heap.release(d);
    // a's and b's spans (and what d left) merge into one span again: a block as big as both fits there.
    expect(heap.stats().freeSpans).toBe(1);
    expect(heap.alloc(1000 + 100)).toBe(a);
    expect(() => heap.release(a + 64)).toThrow(/no live block at/);
    expect(heap.alloc(64 * 65536)).toBeUndefined();
    expect(heap.stats().liveBlocks).toBe(2);
  });
});
