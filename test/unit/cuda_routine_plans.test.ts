// cuda_routine_plans.test.ts: the launches src/backends/cuda/cuda_routines.ts plans for each routine match
// the C signatures of cuda/routines/*.cu they call: as many arguments, each of the kind the kernel declares
// (pointer, int, float), the output and scratch only where the kernel writes (non-const pointers), the
// operands only where it reads, views inside the output, the block size the kernel's __launch_bounds__
// names, and grids inside CUDA's limits. No GPU needed: a wrong plan here is an illegal address there.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { RoutineName } from "../../src/core/ops.js";
import type { AttentionSpec, PagedAttentionSpec, RoutineSpecs, ScatterAddSpec, SoftmaxSpec } from "../../src/core/routines.js";
import { attentionBackwardSizes } from "../../src/core/routines.js";
import type { CudaRoutinePlan, RoutineArg } from "../../src/backends/cuda/cuda_routines.js";
import { cudaRoutinePlan, ROUTINE_FILES } from "../../src/backends/cuda/cuda_routines.js";

const DIR = fileURLToPath(new URL("../../cuda/routines", import.meta.url));

interface Param { readonly kind: "p" | "i" | "f"; readonly writes: boolean; readonly text: string }
interface Kernel { readonly params: readonly Param[]; readonly launchBounds?: number }

/** The extern "C" entries of a .cu file, by name with the dtype suffix, from its ENTRY macro. */
function kernels(file: string): Map<string, Kernel> {
  const src = readFileSync(`${DIR}/${file}.cu`, "utf8").replace(/\\\n/g, " ");
  const found = new Map<string, Kernel>();
  for (const m of src.matchAll(/extern "C" __global__ void (?:__launch_bounds__\((\d+)\) )?(\w+)##sfx\(([^)]*)\)/g)) {
    const params = m[3]!.split(",").map((p) => p.trim()).map((text): Param => {
      if (text.includes("*")) return { kind: "p", writes: !text.startsWith("const"), text };
      if (/^int\b/.test(text)) return { kind: "i", writes: false, text };
      if (/^float\b/.test(text)) return { kind: "f", writes: false, text };
      throw new Error(`${file}.cu: a parameter this test does not know: ${text}`);
    });
    for (const sfx of ["f32", "f16", "bf16"]) found.set(`${m[2]}${sfx}`, { params, ...(m[1] ? { launchBounds: Number(m[1]) } : {}) });
  }
  return found;
}

const kindOf = (a: RoutineArg): string => ("int" in a ? "i" : "float" in a ? "f" : "p");

/** Checks a plan against its kernels; `bufBytes[i]` is the byte size of launch buffer i (0 the output). */
function checkPlan(plan: CudaRoutinePlan, bufBytes: readonly number[]): void {
  for (const l of plan.launches) {
    const file = l.file ?? plan.file;
    const k = kernels(file).get(l.entry);
    expect(k, `${file}.cu has no entry ${l.entry}`).toBeDefined();
    expect(l.args.map(kindOf).join(""), `${l.entry}: argument kinds against (${k!.params.map((p) => p.text).join(", ")})`).toBe(k!.params.map((p) => p.kind).join(""));
    l.args.forEach((a, i) => {
      const p = k!.params[i]!;
      if ("buf" in a) {
        expect(a.buf, `${l.entry} argument ${i} (${p.text})`).toBeLessThan(bufBytes.length);
        expect(a.byteOffset ?? 0, `${l.entry} argument ${i}: a view past its buffer`).toBeLessThan(bufBytes[a.buf]!);
        // The kernel writes through a non-const pointer: that must be the output (operands are read-only).
        expect(a.buf === 0, `${l.entry} argument ${i} (${p.text}) is ${a.buf === 0 ? "the output" : `operand ${a.buf}`}`).toBe(p.writes);
      }
      if ("scratch" in a) expect(plan.scratch[a.scratch], `${l.entry}: scratch '${a.scratch}' not allocated`).toBeGreaterThan(0);
      if ("null" in a) expect(p.writes, `${l.entry}: null for a read pointer (${p.text})`).toBe(true);
    });
    if (k!.launchBounds) expect(l.block[0] * l.block[1] * l.block[2], `${l.entry}: block against __launch_bounds__`).toBe(k!.launchBounds);
    expect(l.block[0] % 32, `${l.entry}: whole warps`).toBe(0);
    expect(Math.min(...l.grid)).toBeGreaterThan(0);
    expect(Math.max(l.grid[1], l.grid[2])).toBeLessThanOrEqual(65535);
  }
}

const attention: AttentionSpec = { batch: 2, heads: 8, kvHeads: 2, tq: 13, tk: 29, headDim: 64, causal: true, scale: 0.125, dtype: "bf16", out: "bf16" };

describe("cuda routine plans", () => {
  it("softmax: one block of whole warps per row, over the row's columns", () => {
    const s: SoftmaxSpec = { rows: 7, cols: 1000, dtype: "f16", out: "f16" };
    const plan = cudaRoutinePlan("softmax", s) as CudaRoutinePlan;
    checkPlan(plan, [7 * 1000 * 2, 7 * 1000 * 2]);
    expect(plan.launches[0]!.grid).toEqual([7, 1, 1]);
    expect((cudaRoutinePlan("softmax", { ...s, cols: 5 }) as CudaRoutinePlan).launches[0]!.block[0]).toBe(32);
    expect(cudaRoutinePlan("softmax", { ...s, out: "f32" })).toMatch(/output dtype f32/);
  });

  it("attention: 4 query rows per block, over heads and batch, with an lse scratch row each", () => {
    const plan = cudaRoutinePlan("attention", attention) as CudaRoutinePlan;
    const q = 2 * 8 * 13 * 64 * 2, kv = 2 * 2 * 29 * 64 * 2;
    checkPlan(plan, [q, q, kv, kv]);
    expect(plan.launches[0]!.grid).toEqual([4, 8, 2]);
    expect(plan.scratch.lse).toBe(2 * 8 * 13 * 4);
    expect(cudaRoutinePlan("attention", { ...attention, headDim: 80 })).toMatch(/head size 80/);
    expect(cudaRoutinePlan("attention", { ...attention, kvHeads: 3 })).toMatch(/8 heads over 3 KV heads/);
  });

  it("attention_backward: forward for lse, then delta, dQ and dK/dV into the three slices of the output", () => {
    const { dq, dkv, total } = attentionBackwardSizes(attention);
    const plan = cudaRoutinePlan("attention_backward", attention) as CudaRoutinePlan;
    const q = dq * 2, kv = dkv * 2;
    checkPlan(plan, [total * 2, q, kv, kv, q, q]);
    expect(plan.launches.map((l) => l.entry)).toEqual(["attention_bf16", "attention_bwd_delta_bf16", "attention_bwd_dq_bf16", "attention_bwd_dkdv_bf16"]);
    const dkdv = plan.launches[3]!;
    expect(dkdv.args.slice(0, 2)).toEqual([{ buf: 0, byteOffset: dq * 2 }, { buf: 0, byteOffset: (dq + dkv) * 2 }]);
    expect(dkdv.grid).toEqual([Math.ceil(29 / 4), 2, 2]);
    // The forward's output lands where dQ is then written (the dK/dV kernel does not read it), so no scratch holds it.
    expect(plan.launches[0]!.args[0]).toEqual({ buf: 0, byteOffset: 0 });
    expect(plan.launches[2]!.args[0]).toEqual({ buf: 0, byteOffset: 0 });
  });

  it("paged_attention: a warp per (head, token), ragged tokens through tokenSeq and tokenPos", () => {
    const s: PagedAttentionSpec = { numTokens: 5, heads: 4, kvHeads: 2, headDim: 32, blockSize: 16, numBlocks: 9, numSeqs: 3, maxBlocksPerSeq: 4, scale: 0.2, dtype: "f32", out: "f32" };
    const plan = cudaRoutinePlan("paged_attention", s) as CudaRoutinePlan;
    const q = 5 * 4 * 32 * 4, cache = 9 * 16 * 2 * 32 * 4;
    checkPlan(plan, [q, q, cache, cache, 3 * 4 * 4, 5 * 4, 5 * 4]);
    expect(plan.launches[0]!.grid).toEqual([4, 5, 1]);
  });

  it("scatter_add: f32 into a zeroed output, indices and source in the kernel's order", () => {
    const s: ScatterAddSpec = { rows: 50, cols: 24, n: 300, dtype: "f32" };
    const plan = cudaRoutinePlan("scatter_add", s) as CudaRoutinePlan;
    checkPlan(plan, [50 * 24 * 4, 300 * 4, 300 * 24 * 4]);
    expect(plan.zeroOutputBytes).toBe(50 * 24 * 4);
    expect(plan.launches[0]!.grid[0] * 256).toBeGreaterThanOrEqual(300 * 24);
    expect(cudaRoutinePlan("scatter_add", { ...s, dtype: "bf16" })).toMatch(/accumulates into f32/);
  });

  it("names a file for every routine it plans, and refuses the ones it has no kernel for", () => {
    for (const [name, file] of Object.entries(ROUTINE_FILES)) expect(kernels(file!).size, `${name}: ${file}.cu`).toBeGreaterThan(0);
    const concat: RoutineSpecs["concat"] = { outer: 2, parts: [3, 4], dtype: "f32" };
    expect(cudaRoutinePlan("concat" as RoutineName, concat)).toMatch(/no cuda\/routines kernel for 'concat'/);
  });
});
