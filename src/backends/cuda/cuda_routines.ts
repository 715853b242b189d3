// cuda_routines.ts: how each routine of the op table (src/core/routines.ts) runs as the hand-written
// kernels of cuda/routines/*.cu: which spec fits a kernel, its entry name, grid and block, the scratch
// memory it needs and the argument list in the kernel's own order. Plain data: the backend (backend.ts)
// loads the file's fatbin (built by `npm run build:cuda`), allocates the scratch and launches what this
// says, and test/unit/cuda_routine_plans.test.ts checks every argument list against the kernel's C
// signature. A spec that fits no kernel gets the reason, and the graph falls back to generated kernels.
// Not here: matmul (cuBLASLt, backend.ts), kv_write and concat (copies; the generated kernels serve).

import type { DType } from "../../core/dtype.js";
import { itemsize } from "../../core/dtype.js";
import type { RoutineName } from "../../core/ops.js";
import type { AttentionSpec, PagedAttentionSpec, RoutineSpecs, ScatterAddSpec, SoftmaxSpec } from "../../core/routines.js";
import { attentionBackwardSizes } from "../../core/routines.js";

/** One kernel argument: a buffer of the launch (0 the output, then the operands) at a byte offset, scratch, or a scalar. */
export type RoutineArg =
  | { readonly buf: number; readonly byteOffset?: number }
  | { readonly scratch: string }
  | { readonly null: true }
  | { readonly int: number }
  | { readonly float: number };

export interface RoutineLaunch {
  /** The .cu file of the entry, where it is not the plan's (the backward runs attention.cu's forward). */
  readonly file?: string;
  readonly entry: string;
  readonly grid: readonly [number, number, number];
  readonly block: readonly [number, number, number];
  readonly args: readonly RoutineArg[];
}

export interface CudaRoutinePlan {
  /** cuda/routines/<file>.cu, loaded as cuda/build/routines/<file>.fatbin. */
  readonly file: string;
  /** Device scratch each launch of this routine uses, in bytes, by name. */
  readonly scratch: Readonly<Record<string, number>>;
  /** Bytes of the output to zero before the kernels run (they accumulate into it). */
  readonly zeroOutputBytes: number;
  readonly launches: readonly RoutineLaunch[];
}

/** The file of each routine that has one. */
export const ROUTINE_FILES: Partial<Record<RoutineName, string>> = {
  softmax: "softmax", attention: "attention", attention_backward: "attention_backward", paged_attention: "paged_attention", scatter_add: "scatter_add",
};

const SUFFIX: Partial<Record<DType, string>> = { f32: "f32", f16: "f16", bf16: "bf16" };
/** CUDA's limits on grid.y and grid.z (grid.x goes to 2^31 - 1). */
const GRID_YZ = 65535;
const GRID_X = 2 ** 31 - 1;
/** attention.cu and attention_backward.cu: query (or key) rows per block of 4 warps. */
const ROWS_PER_BLOCK = 4;

const out = (byteOffset = 0): RoutineArg => ({ buf: 0, byteOffset });
const op = (i: number): RoutineArg => ({ buf: i });
const int = (v: number): RoutineArg => ({ int: v });

/** Why a spec's dtypes or head size fit no kernel, or undefined. */
function headReason(s: { dtype: DType; out: DType; headDim: number; heads: number; kvHeads: number }): string | undefined {
  if (!SUFFIX[s.dtype]) return `dtype ${s.dtype} (the kernels take f32, f16 and bf16)`;
  if (s.out !== s.dtype) return `output dtype ${s.out} differs from the input's ${s.dtype}`;
  if (s.headDim % 32 !== 0 || s.headDim > 128 || s.headDim === 0) return `head size ${s.headDim} (a multiple of 32, at most 128: one warp's lanes own D/32 elements)`;
  if (s.kvHeads === 0 || s.heads % s.kvHeads !== 0) return `${s.heads} heads over ${s.kvHeads} KV heads`;
  return undefined;
}

function softmax(s: SoftmaxSpec): CudaRoutinePlan | string {
  const sfx = SUFFIX[s.dtype];
  if (!sfx) return `dtype ${s.dtype} (softmax.cu takes f32, f16 and bf16)`;
  if (s.out !== s.dtype) return `output dtype ${s.out} differs from the input's ${s.dtype}`;
  if (s.rows > GRID_X) return `${s.rows} rows (one block per row, at most ${GRID_X})`;
  // Whole warps (the block reductions shuffle over full warps); 256 threads stride over a long row.
  const block = Math.min(256, Math.max(32, Math.ceil(s.cols / 32) * 32));
  return { file: "softmax", scratch: {}, zeroOutputBytes: 0, launches: [{ entry: `softmax_${sfx}`, grid: [s.rows, 1, 1], block: [block, 1, 1], args: [out(), op(1), int(s.cols)] }] };
}

/** The forward's launch: o and lse where the caller says (lse is what the backward needs). */
function attentionLaunch(s: AttentionSpec, o: RoutineArg): RoutineLaunch {
  return {
    file: "attention", entry: `attention_${SUFFIX[s.dtype]}`, grid: [Math.ceil(s.tq / ROWS_PER_BLOCK), s.heads, s.batch], block: [128, 1, 1],
    args: [o, { scratch: "lse" }, op(1), op(2), op(3), int(s.heads), int(s.kvHeads), int(s.tq), int(s.tk), int(s.headDim), { float: s.scale }, int(s.causal ? 1 : 0)],
  };
}

function attentionReason(s: AttentionSpec): string | undefined {
  const head = headReason(s);
  if (head) return head;
  if (s.tq === 0 || s.tk === 0 || s.batch === 0) return "an empty batch, query or key axis";
  if (s.heads > GRID_YZ || s.batch > GRID_YZ) return `${s.heads} heads x batch ${s.batch} (grid y and z are at most ${GRID_YZ})`;
  return undefined;
}

function attention(s: AttentionSpec): CudaRoutinePlan | string {
  const why = attentionReason(s);
  if (why) return why;
  return { file: "attention", scratch: { lse: s.batch * s.heads * s.tq * 4 }, zeroOutputBytes: 0, launches: [attentionLaunch(s, out())] };
}

/**
 * The spec's backward takes no lse (the cpu and webgpu routines recompute it), so the forward runs first
 * to make one; its output lands in the dQ slice, which the dQ kernel then overwrites.
 */
function attentionBackward(s: AttentionSpec): CudaRoutinePlan | string {
  const why = attentionReason(s);
  if (why) return why;
  const sfx = SUFFIX[s.dtype]!;
  const size = itemsize(s.dtype);
  const { dq, dkv } = attentionBackwardSizes(s);
  const rows = s.batch * s.heads * s.tq;
  const q = op(1), k = op(2), v = op(3), o = op(4), dO = op(5);
  const lse: RoutineArg = { scratch: "lse" }, delta: RoutineArg = { scratch: "delta" };
  const shape = [int(s.heads), int(s.kvHeads), int(s.tq), int(s.tk), int(s.headDim), { float: s.scale }, int(s.causal ? 1 : 0)];
  const block = [128, 1, 1] as const;
  const queryGrid = [Math.ceil(s.tq / ROWS_PER_BLOCK), s.heads, s.batch] as const;
  return {
    file: "attention_backward",
    scratch: { lse: rows * 4, delta: rows * 4 },
    zeroOutputBytes: 0,
    launches: [
      attentionLaunch(s, out()),
      { entry: `attention_bwd_delta_${sfx}`, grid: queryGrid, block, args: [delta, o, dO, int(s.heads), int(s.tq), int(s.headDim)] },
      { entry: `attention_bwd_dq_${sfx}`, grid: queryGrid, block, args: [out(), q, k, v, dO, lse, delta, ...shape] },
      { entry: `attention_bwd_dkdv_${sfx}`, grid: [Math.ceil(s.tk / ROWS_PER_BLOCK), s.kvHeads, s.batch], block, args: [out(dq * size), out((dq + dkv) * size), q, k, v, dO, lse, delta, ...shape] },
    ],
  };
}

function pagedAttention(s: PagedAttentionSpec): CudaRoutinePlan | string {
  const head = headReason(s);
  if (head) return head;
  if (s.numTokens > GRID_YZ) return `${s.numTokens} tokens in one launch (grid y is at most ${GRID_YZ})`;
  if (s.numTokens === 0) return "no tokens";
  return {
    file: "paged_attention", scratch: {}, zeroOutputBytes: 0,
    launches: [{
      entry: `paged_attention_${SUFFIX[s.dtype]}`, grid: [s.heads, s.numTokens, 1], block: [32, 1, 1],
      // NOTE: the kernel's `bad` flag (a block id outside the cache) is not read back yet: null turns it off.
      args: [out(), op(1), op(2), op(3), op(4), op(5), op(6), int(s.heads), int(s.kvHeads), int(s.headDim), int(s.blockSize), int(s.maxBlocksPerSeq), int(s.numBlocks), int(s.numSeqs), { float: s.scale }, { null: true }],
    }],
  };
}

/** Operands: indices (1), src (2). scatter_add.cu accumulates f32 with atomics, into a zeroed output. */
function scatterAdd(s: ScatterAddSpec): CudaRoutinePlan | string {
  if (s.dtype !== "f32") return `dtype ${s.dtype} (scatter_add.cu accumulates into f32; other dtypes use the generated kernels)`;
  const elements = s.n * s.cols;
  if (Math.ceil(elements / 256) > GRID_X) return `${elements} elements (grid x is at most ${GRID_X} blocks of 256)`;
  const grid = Math.max(1, Math.ceil(elements / 256));
  return {
    file: "scatter_add", scratch: {}, zeroOutputBytes: s.rows * s.cols * 4,
    launches: elements === 0 ? [] : [{ entry: "scatter_add_f32", grid: [grid, 1, 1], block: [256, 1, 1], args: [out(), op(2), op(1), int(s.n), int(s.cols), int(s.rows)] }],
  };
}

/** The files a plan's launches come from. */
export const planFiles = (plan: CudaRoutinePlan): string[] => [...new Set(plan.launches.map((l) => l.file ?? plan.file))];

/** The kernels that run this routine, or why none fits. */
export function cudaRoutinePlan<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): CudaRoutinePlan | string {
  switch (name) {
    case "softmax": return softmax(spec as SoftmaxSpec);
    case "attention": return attention(spec as AttentionSpec);
    case "attention_backward": return attentionBackward(spec as AttentionSpec);
    case "paged_attention": return pagedAttention(spec as PagedAttentionSpec);
    case "scatter_add": return scatterAdd(spec as ScatterAddSpec);
    default: return `no cuda/routines kernel for '${name}'`;
  }
}
