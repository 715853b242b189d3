// routines.ts is the cpu backend's door to its hand-written routines: which specs it can build and a
// cache of built executables per spec. The routines themselves live in matmul.ts (wasm SIMD kernel),
// softmax.ts, attention.ts, attention_backward.ts, paged.ts, scatter_add.ts and concat.ts; their meaning is the spec's (src/core/routines.ts) and its reference.

import { wasmKernelsEnabled } from "./wasm/wasm_elementwise.js";
import type { DType } from "../../core/dtype.js";
import { exprKey, hashString } from "../../core/ir.js";
import type { RoutineName } from "../../core/ops.js";
import { assertNever } from "../../core/ops.js";
import type { AttentionSpec, KvWriteSpec, MatmulSpec, ConcatSpec, PagedAttentionSpec, QuantMatmulSpec, RoutineSpecs, ScatterAddSpec, SoftmaxSpec } from "../../core/routines.js";
import { buildAttention } from "./attention.js";
import { buildAttentionBackward } from "./attention_backward.js";
import { buildConcat } from "./concat.js";
import type { CpuExecutable } from "./backend.js";
import { isFloatDType } from "./convert.js";
import { buildMatmul } from "./matmul.js";
import { buildMatmulQ, matmulQReason } from "./matmul_q.js";
import { buildKvWrite, buildPagedAttention } from "./paged.js";
import { buildScatterAdd } from "./scatter_add.js";
import { hasMatmulKernel } from "./wasm/matmul_kernel.js";
import { buildSoftmax } from "./softmax.js";

const isDim = (x: number): boolean => Number.isInteger(x) && x >= 0;

function floatReason(dtype: DType, out: DType): string | undefined {
  if (!isFloatDType(dtype)) return `input dtype ${dtype} is not a float dtype (f64, f32, f16, bf16)`;
  if (!isFloatDType(out)) return `output dtype ${out} is not a float dtype (f64, f32, f16, bf16)`;
  return undefined;
}

function matmulReason(s: MatmulSpec): string | undefined {
  if (![s.batch, s.m, s.n, s.k, s.aBatchStride, s.bBatchStride].every(isDim)) return "sizes and strides must be integers >= 0";
  const reason = floatReason(s.dtype, s.out);
  if (!reason && s.dtype !== "f64" && !hasMatmulKernel()) return "this JS engine lacks WebAssembly SIMD";
  return reason;
}

function softmaxReason(s: SoftmaxSpec): string | undefined {
  if (!isDim(s.rows) || !isDim(s.cols)) return "rows and cols must be integers >= 0";
  return floatReason(s.dtype, s.out);
}

function attentionReason(s: AttentionSpec): string | undefined {
  if (![s.batch, s.heads, s.kvHeads, s.tq, s.tk, s.headDim].every(isDim)) return "sizes must be integers >= 0";
  if (s.kvHeads === 0 || s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`;
  return floatReason(s.dtype, s.out);
}

function kvWriteReason(s: KvWriteSpec): string | undefined {
  if (![s.numSlots, s.rowSize, s.rows].every(isDim)) return "sizes must be integers >= 0";
  return isFloatDType(s.dtype) ? undefined : `dtype ${s.dtype} is not a float dtype`;
}

function pagedReason(s: PagedAttentionSpec): string | undefined {
  if (![s.numTokens, s.heads, s.kvHeads, s.headDim, s.blockSize, s.numBlocks, s.numSeqs, s.maxBlocksPerSeq].every(isDim)) return "sizes must be integers >= 0";
  if (s.kvHeads === 0 || s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`;
  return floatReason(s.dtype, s.out);
}

function scatterAddReason(s: ScatterAddSpec): string | undefined {
  if (![s.rows, s.cols, s.n].every(isDim)) return "rows, cols and n must be integers >= 0";
  return isFloatDType(s.dtype) ? undefined : `dtype ${s.dtype} is not a float dtype (f64, f32, f16, bf16)`;
}

function concatReason(s: ConcatSpec): string | undefined {
  if (!isDim(s.outer) || s.parts.length === 0 || !s.parts.every(isDim)) return "outer and every part's length must be integers >= 0, with at least one part";
  return undefined;
}

/** Why the cpu backend cannot build this routine, or undefined when it can. */
function unsupportedReason<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): string | undefined {
  // NOTE: switched on as the union, not R: a type parameter never narrows to never, so a missing case would compile.
  const routine: RoutineName = name;
  switch (routine) {
    case "matmul": return matmulReason(spec as MatmulSpec);
    case "softmax": return softmaxReason(spec as SoftmaxSpec);
    case "attention": return attentionReason(spec as AttentionSpec);
    case "attention_backward": return attentionReason(spec as AttentionSpec);
    case "kv_write": return kvWriteReason(spec as KvWriteSpec);
    case "paged_attention": return pagedReason(spec as PagedAttentionSpec);
    case "scatter_add": return scatterAddReason(spec as ScatterAddSpec);
    case "concat": return concatReason(spec as ConcatSpec);
    case "matmul_q": return matmulQReason(spec as QuantMatmulSpec);
    default: return assertNever(routine, "routine");
  }
}

export function supportsCpuRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): boolean {
  return unsupportedReason(name, spec) === undefined;
}

/** A structural key for a spec; the epilogue's expression by exprKey (JSON would fold NaN and Infinity into null). */
function specKey(name: RoutineName, spec: RoutineSpecs[RoutineName]): string {
  const epi = "epilogue" in spec ? spec.epilogue : undefined;
  const plain = JSON.stringify({ ...spec, epilogue: undefined });
  return epi ? `${name}:${plain}:${exprKey(epi.expr)}:${epi.inputs.join(",")}` : `${name}:${plain}`;
}

const cache = new Map<string, CpuExecutable>();

/** Build (or fetch from the cache) the executable for a routine spec; throws naming the spec when unsupported. */
export function buildCpuRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): CpuExecutable {
  // NOTE: whether epilogues may run as wasm is part of what is built (KILN_CPU_WASM_KERNELS, read at build time).
  const key = `${wasmKernelsEnabled() ? "wasm" : "js"} ${specKey(name, spec)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const reason = unsupportedReason(name, spec);
  if (reason) throw new Error(`cpu: cannot build routine ${name} for ${JSON.stringify(spec)}: ${reason}`);
  let built: { source: string; run: (views: ArrayBufferView[]) => void };
  let dtypes: DType[];
  // NOTE: switched on as the union, not R: a type parameter never narrows to never, so a missing case would compile.
  const routine: RoutineName = name;
  switch (routine) {
    case "matmul": {
      const s = spec as MatmulSpec;
      built = buildMatmul(s);
      dtypes = [s.out, s.dtype, s.dtype, ...(s.epilogue?.inputs ?? [])];
      break;
    }
    case "softmax": {
      const s = spec as SoftmaxSpec;
      built = buildSoftmax(s);
      dtypes = [s.out, s.dtype];
      break;
    }
    case "attention": {
      const s = spec as AttentionSpec;
      built = buildAttention(s);
      dtypes = [s.out, s.dtype, s.dtype, s.dtype];
      break;
    }
    case "attention_backward": {
      const s = spec as AttentionSpec;
      built = buildAttentionBackward(s);
      dtypes = [s.out, s.dtype, s.dtype, s.dtype, s.dtype, s.dtype];
      break;
    }
    case "kv_write": {
      const s = spec as KvWriteSpec;
      built = buildKvWrite(s);
      dtypes = [s.dtype, s.dtype, "i32", s.dtype];
      break;
    }
    case "paged_attention": {
      const s = spec as PagedAttentionSpec;
      built = buildPagedAttention(s);
      dtypes = [s.out, s.dtype, s.dtype, s.dtype, "i32", "i32", "i32"];
      break;
    }
    case "scatter_add": {
      const s = spec as ScatterAddSpec;
      built = buildScatterAdd(s);
      dtypes = [s.dtype, "i32", s.dtype];
      break;
    }
    case "concat": {
      const s = spec as ConcatSpec;
      built = buildConcat(s);
      dtypes = [s.dtype, ...s.parts.map(() => s.dtype)];
      break;
    }
    case "matmul_q": {
      const s = spec as QuantMatmulSpec;
      built = buildMatmulQ(s);
      dtypes = [s.out, s.dtype, "u8"];
      break;
    }
    default: return assertNever(routine, "routine");
  }
  const exe: CpuExecutable = { name: `${name}_${hashString(key)}`, source: built.source, dtypes, run: built.run };
  cache.set(key, exe);
  return exe;
}
