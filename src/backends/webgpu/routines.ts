// routines.ts builds the hand-written WebGPU routines (tiled matmul, softmax, flash attention and its backward, the
// paged KV cache's kv_write and paged_attention, scatter_add and concat) from the WGSL templates in shaders/: it decides which
// specs fit, picks tile sizes, fills the template's constants, writes the buffer bindings for the dtypes
// and says how many workgroups to dispatch.
// It does not compile or launch (backend.ts) nor render expressions (render_wgsl.ts renders epilogues).
// Memory layout (shared with the runtime): f32 is array<f32>; f16/bf16 are packed 2 per u32 word, read
// and written in f32 (NOTE: caps.f16Math is not used: no adapter we can test on has shader-f16, and an
// untested f16 variant is not written). caps.subgroups picks softmax's subgroup variant.

import type { BackendCaps } from "../../core/backend.js";
import type { DType } from "../../core/dtype.js";
import { itemsize, STORAGE_FORMATS } from "../../core/dtype.js";
import type { RoutineName } from "../../core/ops.js";
import { assertNever } from "../../core/ops.js";
import type { AttentionSpec, KvWriteSpec, MatmulSpec, ConcatSpec, PagedAttentionSpec, QuantMatmulSpec, RoutineSpecs, ScatterAddSpec, SoftmaxSpec } from "../../core/routines.js";
import { attentionBackwardSizes, ROUTINE_IN_PLACE, ROUTINE_OPERANDS } from "../../core/routines.js";
import { renderEpilogueWgsl } from "./render_wgsl.js";
import type { ShaderName } from "./shader_text.js";
import { shaderTemplate } from "./shader_text.js";

/** A routine's WGSL: buffer slot i is @group(0) @binding(i); launched with `dispatch` workgroups. */
export interface WebgpuRoutineSource {
  readonly code: string;
  readonly dispatch: [number, number, number];
  readonly name: string;
  /** The slot written in place: it must be the output's buffer, and the shader has no binding for it. */
  readonly inPlaceSlot?: number;
}


/**
 * Keeps the lines of `//#if FLAG ... [//#else ...] //#endif` sections (not nested) that flags[FLAG] picks.
 * A flag the caller did not set, or an unbalanced section, throws.
 */
function selectSections(name: ShaderName, text: string, flags: Record<string, boolean>): string {
  const out: string[] = [];
  let open: { flag: string; keep: boolean; inElse: boolean } | undefined;
  const fail = (why: string): never => {
    throw new Error(`webgpu: shaders/${name}.wgsl: ${why}`);
  };
  for (const line of text.split("\n")) {
    const m = /^\s*\/\/#(if|else|endif)\b\s*(\w*)\s*$/.exec(line);
    if (!m) {
      if (!open || open.keep !== open.inElse) out.push(line);
      continue;
    }
    const [, directive, flag = ""] = m;
    if (directive === "if") {
      if (open) fail(`//#if ${flag} inside //#if ${open.flag}`);
      const keep = flags[flag];
      if (keep === undefined) fail(`no value for //#if ${flag}`);
      open = { flag, keep: keep!, inElse: false };
    } else if (!open) {
      fail(`//#${directive} without its //#if`);
    } else if (directive === "endif") {
      open = undefined;
    } else if (open.inElse) {
      fail(`a second //#else in //#if ${open.flag}`);
    } else {
      open.inElse = true;
    }
  }
  if (open) fail(`//#if ${open.flag} is not closed`);
  return out.join("\n");
}

/**
 * Fill `{{NAME}}` with consts[NAME] and whole `//!NAME` lines with blocks[NAME], after keeping the
 * `//#if FLAG` sections that flags pick; any other placeholder throws.
 */
function fillTemplate(name: ShaderName, consts: Record<string, string>, blocks: Record<string, string>, flags: Record<string, boolean> = {}): string {
  return selectSections(name, shaderTemplate(name), flags)
    .replace(/\{\{([A-Z_0-9]+)\}\}/g, (_, key: string) => {
      const v = consts[key];
      if (v === undefined) throw new Error(`webgpu: shaders/${name}.wgsl has no value for {{${key}}}`);
      return v;
    })
    .replace(/^\/\/!([A-Z_]+)$/gm, (_, key: string) => {
      const v = blocks[key];
      if (v === undefined) throw new Error(`webgpu: shaders/${name}.wgsl has no code for //!${key}`);
      return v;
    });
}

// ---- WGSL literals and the bindings' accessors ----

const MAX_DISPATCH = 65535; // WebGPU's default maxComputeWorkgroupsPerDimension
const MAX_INDEX = 2 ** 31 - 1; // flat indices are u32 in the shaders and gid is i32 in epilogues
const WORKGROUP_FLOATS = 4096; // 16 KiB: WebGPU's default maxComputeWorkgroupStorageSize
const MAX_BINDINGS = 8; // WebGPU's default maxStorageBuffersPerShaderStage
const ROUTINE_DTYPES: readonly DType[] = ["f32", "f16", "bf16"];

const u32 = (x: number): string => `${x}u`;
const bool = (x: boolean): string => (x ? "true" : "false");
const f32 = (x: number): string => String(Math.fround(x));
const cdiv = (a: number, b: number): number => Math.ceil(a / b);
const nextPow2 = (x: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

// Round-to-nearest-even conversions, bit-exact with core/dtype.ts (pack2x16float leaves rounding and
// out-of-range values to the implementation).
const TO_F16_BITS = `fn to_half_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let e8 = (b >> 23u) & 0xffu;
  let mant = b & 0x7fffffu;
  if (e8 == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  let e = i32(e8) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    let full = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rest = full & ((1u << shift) - 1u);
    let m = full >> shift;
    return sign | (m + select(0u, 1u, rest > half || (rest == half && (m & 1u) == 1u)));
  }
  let rest = mant & 0x1fffu;
  let o = sign | (u32(e) << 10u) | (mant >> 13u);
  return o + select(0u, 1u, rest > 0x1000u || (rest == 0x1000u && (o & 1u) == 1u));
}`;
const TO_BF16_BITS = `fn to_half_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) { return (b >> 16u) | 0x40u; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}`;

function inputWgsl(name: string, slot: number, dtype: DType): string {
  const buf = `buf_${name}`;
  const decl = `@group(0) @binding(${slot}) var<storage, read> ${buf}: array<${dtype === "f32" ? "f32" : "u32"}>;`;
  const fn = `fn load_${name}(i: u32) -> f32`;
  switch (dtype) {
    case "f32": return `${decl}\n${fn} { return ${buf}[i]; }`;
    case "f16": return `${decl}\n${fn} { return unpack2x16float(${buf}[i >> 1u])[i & 1u]; }`;
    case "bf16":
      return `${decl}\n${fn} {\n  let w = ${buf}[i >> 1u];\n  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));\n}`;
    default: throw new Error(`webgpu: routine input '${name}' has dtype ${dtype}; routines read f32, f16 or bf16`);
  }
}

/**
 * store_out1(i, v) and store_out2(i, v0, v1) (i even) for slot 0.
 * NOTE: with f16/bf16 a word can straddle two invocations' elements (a row of odd length ends mid-word).
 * Those halves are written with atomicAnd + atomicOr, which touch only their own 16 bits, so the two
 * writers cannot lose each other's half; words an invocation owns whole are written with one atomicStore.
 */
function outputWgsl(dtype: DType): string {
  if (dtype === "f32") {
    return [
      "@group(0) @binding(0) var<storage, read_write> buf_out: array<f32>;",
      "fn store_out1(i: u32, v: f32) { buf_out[i] = v; }",
      "fn store_out2(i: u32, v0: f32, v1: f32) { buf_out[i] = v0; buf_out[i + 1u] = v1; }",
    ].join("\n");
  }
  if (dtype !== "f16" && dtype !== "bf16") throw new Error(`webgpu: routine output dtype ${dtype} is not f32, f16 or bf16`);
  return [
    "@group(0) @binding(0) var<storage, read_write> buf_out: array<atomic<u32>>;",
    dtype === "f16" ? TO_F16_BITS : TO_BF16_BITS,
    "fn store_out1(i: u32, v: f32) {",
    "  let sh = (i & 1u) * 16u;",
    "  atomicAnd(&buf_out[i >> 1u], ~(0xffffu << sh));",
    "  atomicOr(&buf_out[i >> 1u], to_half_bits(v) << sh);",
    "}",
    "fn store_out2(i: u32, v0: f32, v1: f32) { atomicStore(&buf_out[i >> 1u], to_half_bits(v0) | (to_half_bits(v1) << 16u)); }",
  ].join("\n");
}

function bindingsWgsl(out: DType, inputs: readonly (readonly [string, DType])[]): string {
  return [outputWgsl(out), ...inputs.map(([name, dtype], i) => inputWgsl(name, i + 1, dtype))].join("\n");
}

const indexWgsl = (name: string, slot: number): string => `@group(0) @binding(${slot}) var<storage, read> ${name}: array<i32>;`;

// ---- which specs fit (undefined when one does, else why not) ----

const isDim = (x: number): boolean => Number.isInteger(x) && x >= 1;

function dtypeReason(dtype: DType, out: DType, caps: BackendCaps): string | undefined {
  for (const d of [dtype, out]) {
    if (!ROUTINE_DTYPES.includes(d)) return `dtype ${d} is not f32, f16 or bf16`;
    if (!caps.dtypes.includes(d)) return `the device does not store ${d}`;
  }
  return undefined;
}

/** Every buffer's element count fits the flat u32/i32 indices and the device's largest buffer. */
function sizeReason(buffers: readonly (readonly [string, number, DType])[], caps: BackendCaps): string | undefined {
  for (const [what, elems, dtype] of buffers) {
    if (elems > MAX_INDEX) return `${what} has ${elems} elements, over the 2^31 - 1 a flat index can reach`;
    if (elems * itemsize(dtype) > caps.maxBufferBytes) return `${what} needs ${elems * itemsize(dtype)} bytes, over the device's ${caps.maxBufferBytes}`;
  }
  return undefined;
}

// NOTE: empty operands are refused (a size of 0 anywhere): WebGPU cannot bind an empty buffer, and the
// tensor layer's primitive path handles empty tensors for free.

function matmulReason(s: MatmulSpec, caps: BackendCaps): string | undefined {
  if (![s.batch, s.m, s.n, s.k].every(isDim)) return "batch, m, n and k must be integers >= 1";
  if (![s.aBatchStride, s.bBatchStride].every((x) => Number.isInteger(x) && x >= 0)) return "batch strides must be integers >= 0";
  const [tm, tn] = matmulTiles(s);
  if (cdiv(s.m, tm) > MAX_DISPATCH || cdiv(s.n, tn) > MAX_DISPATCH) return `${s.m}x${s.n} needs more than ${MAX_DISPATCH} tiles along a side`;
  const inputs = s.epilogue?.inputs.length ?? 0;
  if (1 + ROUTINE_OPERANDS.matmul + inputs > MAX_BINDINGS) return `an epilogue with ${inputs} inputs needs more than ${MAX_BINDINGS} bindings`;
  return dtypeReason(s.dtype, s.out, caps) ?? sizeReason([
    ["A", s.aBatchStride * (s.batch - 1) + s.m * s.k, s.dtype],
    ["B", s.bBatchStride * (s.batch - 1) + s.k * s.n, s.dtype],
    ["C", s.batch * s.m * s.n, s.out],
  ], caps);
}

function softmaxReason(s: SoftmaxSpec, caps: BackendCaps): string | undefined {
  if (!isDim(s.rows) || !isDim(s.cols)) return "rows and cols must be integers >= 1";
  return dtypeReason(s.dtype, s.out, caps) ?? sizeReason([["x", s.rows * s.cols, s.dtype], ["out", s.rows * s.cols, s.out]], caps);
}

function attentionReason(s: AttentionSpec, caps: BackendCaps): string | undefined {
  if (![s.batch, s.heads, s.kvHeads, s.tq, s.tk, s.headDim].every(isDim)) return "sizes must be integers >= 1";
  if (s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`;
  // NOTE: a block of queries, two blocks of keys and the scores share 16 KiB of workgroup memory in f32;
  // past 256 columns a block would hold fewer than one query and one key per step.
  if (s.headDim > 256) return `headDim ${s.headDim} is over 256, the most the workgroup memory layout holds`;
  if (s.heads > MAX_DISPATCH || cdiv(s.tq, attentionTiles(s.headDim, s.tq).bq) > MAX_DISPATCH) return `heads or query blocks over ${MAX_DISPATCH}`;
  if (!Number.isFinite(s.scale)) return `scale ${s.scale} is not finite`;
  const qElems = s.batch * s.heads * s.tq * s.headDim;
  const kvElems = s.batch * s.kvHeads * s.tk * s.headDim;
  return dtypeReason(s.dtype, s.out, caps) ?? sizeReason([["q", qElems, s.dtype], ["k and v", kvElems, s.dtype], ["out", qElems, s.out]], caps);
}

function attentionBackwardReason(s: AttentionSpec, caps: BackendCaps): string | undefined {
  if (![s.batch, s.heads, s.kvHeads, s.tq, s.tk, s.headDim].every(isDim)) return "sizes must be integers >= 1";
  if (s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`;
  // NOTE: past one chunk of rows, dK and dV accumulate in the output buffer, so it must hold f32; there f16
  // and bf16 training on webgpu uses the composed backward (matmul and softmax routines).
  if (backwardChunked(s) && s.out !== "f32") {
    return `output dtype ${s.out} with ${(s.heads / s.kvHeads) * s.tq} query rows per kv head (over ${BACKWARD_ROW_CHUNK}): the backward accumulates in its output, which must then be f32`;
  }
  if (s.headDim > 256) return `headDim ${s.headDim} is over 256 (three private accumulators of headDim floats per thread)`;
  if (s.kvHeads > MAX_DISPATCH) return `${s.kvHeads} kv heads need more than ${MAX_DISPATCH} workgroups along x`;
  if (!Number.isFinite(s.scale)) return `scale ${s.scale} is not finite`;
  const { dq, dkv, total } = attentionBackwardSizes(s);
  return dtypeReason(s.dtype, s.out, caps) ?? sizeReason([["q, o and dO", dq, s.dtype], ["k and v", dkv, s.dtype], ["out", total, s.out]], caps);
}

function kvWriteReason(s: KvWriteSpec, caps: BackendCaps): string | undefined {
  if (![s.numSlots, s.rowSize, s.rows].every(isDim)) return "numSlots, rowSize and rows must be integers >= 1";
  return dtypeReason(s.dtype, s.dtype, caps) ?? sizeReason([["cache", s.numSlots * s.rowSize, s.dtype], ["values", s.rows * s.rowSize, s.dtype]], caps);
}

function pagedAttentionReason(s: PagedAttentionSpec, caps: BackendCaps): string | undefined {
  const sizes = [s.numTokens, s.heads, s.kvHeads, s.headDim, s.blockSize, s.numBlocks, s.numSeqs, s.maxBlocksPerSeq];
  if (!sizes.every(isDim)) return "sizes must be integers >= 1";
  if (s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`;
  // NOTE: the same workgroup memory layout as attention's: past 256 columns a block holds too few keys.
  if (s.headDim > 256) return `headDim ${s.headDim} is over 256, the most the workgroup memory layout holds`;
  if (s.heads > MAX_DISPATCH) return `${s.heads} heads need more than ${MAX_DISPATCH} workgroups along x`;
  if (s.maxBlocksPerSeq * s.blockSize > MAX_INDEX) return `a sequence of ${s.maxBlocksPerSeq} blocks of ${s.blockSize} is over 2^31 - 1 positions`;
  if (!Number.isFinite(s.scale)) return `scale ${s.scale} is not finite`;
  const qElems = s.numTokens * s.heads * s.headDim;
  return dtypeReason(s.dtype, s.out, caps) ?? sizeReason([
    ["q", qElems, s.dtype], ["out", qElems, s.out], ["k and v caches", s.numBlocks * s.blockSize * s.kvHeads * s.headDim, s.dtype],
    ["block tables", s.numSeqs * s.maxBlocksPerSeq, "i32"],
  ], caps);
}

function scatterAddReason(s: ScatterAddSpec, caps: BackendCaps): string | undefined {
  if (![s.rows, s.cols, s.n].every(isDim)) return "rows, cols and n must be integers >= 1";
  // NOTE: f32 only: one invocation owns an element, and f16/bf16 pack two columns in a word (and would
  // round at every add); those dtypes take the tensor layer's one-hot reduction.
  if (s.dtype !== "f32") return `dtype ${s.dtype} is not f32 (the only dtype the scatter_add shader sums in)`;
  if (cdiv(s.cols * scatterSplits(s).splits, 64) > MAX_DISPATCH * MAX_DISPATCH) return `${s.cols} columns need too many workgroups`;
  return sizeReason([["out", s.rows * s.cols, s.dtype], ["src", s.n * s.cols, s.dtype], ["indices", s.n, "i32"]], caps);
}

function concatReason(s: ConcatSpec, caps: BackendCaps): string | undefined {
  if (!isDim(s.outer) || s.parts.length === 0 || !s.parts.every(isDim)) return "outer and every part's length must be integers >= 1, with at least one part";
  // NOTE: 32-bit elements only: a packed f16/bf16 or byte part can start mid-word, which a word copy cannot place.
  if (!["f32", "i32", "u32"].includes(s.dtype)) return `dtype ${s.dtype} is not a 32-bit dtype (f32, i32, u32)`;
  if (1 + s.parts.length > MAX_BINDINGS) return `${s.parts.length} parts need more than ${MAX_BINDINGS} bindings`;
  const total = s.parts.reduce((a, b) => a + b, 0);
  if (cdiv(s.outer * total, 256) > MAX_DISPATCH * MAX_DISPATCH) return `${s.outer * total} elements need too many workgroups`;
  return sizeReason([["out", s.outer * total, s.dtype], ...s.parts.map((p, i) => [`part ${i}`, s.outer * p, s.dtype] as const)], caps);
}

function matmulQReason(s: QuantMatmulSpec, caps: BackendCaps): string | undefined {
  if (![s.m, s.n, s.k].every(isDim)) return "m, n and k must be integers >= 1";
  if (s.dtype !== "f32" || s.out !== "f32") return `x and out must be f32 (got ${s.dtype} -> ${s.out})`;
  if (!["q8_0", "q4_0", "q4_k", "fp8e4m3_b128"].includes(s.format)) return `format ${String(s.format)} is not q8_0, q4_0, q4_k or fp8e4m3_b128`;
  const { blockElems, blockBytes } = STORAGE_FORMATS[s.format];
  if (s.k % blockElems !== 0) return `k = ${s.k} is not a whole number of ${s.format} blocks (${blockElems} elements each)`;
  if (cdiv(s.m * s.n, 64) > MAX_DISPATCH * MAX_DISPATCH) return `${s.m * s.n} outputs need too many workgroups`;
  const wBytes = s.n * (s.k / blockElems) * blockBytes;
  if (wBytes > caps.maxBufferBytes) return `the weight's ${wBytes} bytes are over the device's ${caps.maxBufferBytes}`;
  return sizeReason([["out", s.m * s.n, s.out], ["x", s.m * s.k, s.dtype]], caps);
}

function unsupportedReason<R extends RoutineName>(name: R, spec: RoutineSpecs[R], caps: BackendCaps): string | undefined {
  // NOTE: switched on as the union, not R: a type parameter never narrows to never, so a missing case would compile.
  const routine: RoutineName = name;
  switch (routine) {
    case "matmul": return matmulReason(spec as MatmulSpec, caps);
    case "softmax": return softmaxReason(spec as SoftmaxSpec, caps);
    case "attention": return attentionReason(spec as AttentionSpec, caps);
    case "attention_backward": return attentionBackwardReason(spec as AttentionSpec, caps);
    case "kv_write": return kvWriteReason(spec as KvWriteSpec, caps);
    case "paged_attention": return pagedAttentionReason(spec as PagedAttentionSpec, caps);
    case "scatter_add": return scatterAddReason(spec as ScatterAddSpec, caps);
    case "concat": return concatReason(spec as ConcatSpec, caps);
    case "matmul_q": return matmulQReason(spec as QuantMatmulSpec, caps);
    default: return assertNever(routine, "routine");
  }
}

// ---- the routines ----

/** Output tile (rows, cols) of a workgroup; 16 rows when m is that small (a decode step's m is 1). */
function matmulTiles(s: MatmulSpec): [number, number, number] {
  return [s.m <= 16 ? 16 : 64, 64, 16];
}

function buildMatmul(s: MatmulSpec): WebgpuRoutineSource {
  const [tm, tn, tk] = matmulTiles(s);
  const code = fillTemplate("matmul", {
    M: u32(s.m), N: u32(s.n), K: u32(s.k), BATCH: u32(s.batch),
    A_BATCH_STRIDE: u32(s.aBatchStride), B_BATCH_STRIDE: u32(s.bBatchStride),
    TRANS_A: bool(s.transA), TRANS_B: bool(s.transB), TILE_M: u32(tm), TILE_N: u32(tn), TILE_K: u32(tk),
  }, {
    BINDINGS: bindingsWgsl(s.out, [["a", s.dtype], ["b", s.dtype]]),
    EPILOGUE: s.epilogue
      ? renderEpilogueWgsl(s.epilogue, 1 + ROUTINE_OPERANDS.matmul)
      : "fn epilogue(acc: f32, gid: i32) -> f32 { return acc; }",
  });
  const t = `${s.transA ? "t" : ""}${s.transB ? "T" : ""}`;
  const name = `matmul_${s.dtype}_${s.out}_b${s.batch}_${s.m}x${s.n}x${s.k}${t ? `_${t}` : ""}${s.epilogue ? "_epi" : ""}`;
  return { name, code, dispatch: [cdiv(s.n, tn), cdiv(s.m, tm), Math.min(s.batch, MAX_DISPATCH)] };
}

function buildSoftmax(s: SoftmaxSpec, caps: BackendCaps): WebgpuRoutineSource {
  // One workgroup per row: enough threads for about 4 columns each, 32 to 256 of them.
  const wg = Math.min(256, Math.max(32, nextPow2(cdiv(s.cols, 4))));
  // NOTE: the row's max and sum reduce within subgroups first where the device has them. An f16-math
  // variant (caps.f16Math) would be chosen here too; no adapter we can test on has shader-f16, so none exists.
  const code = fillTemplate("softmax", { ROWS: u32(s.rows), COLS: u32(s.cols), WG: u32(wg) }, {
    BINDINGS: bindingsWgsl(s.out, [["x", s.dtype]]),
  }, { SUBGROUPS: caps.subgroups });
  const name = `softmax_${s.dtype}_${s.out}_${s.rows}x${s.cols}${caps.subgroups ? "_subgroups" : ""}`;
  return { name, code, dispatch: [Math.min(s.rows, MAX_DISPATCH), 1, 1] };
}

/**
 * Queries (bq) and keys (bk) per block, powers of two with bq * bk <= 256 (the workgroup's threads),
 * fitting (bq + 2 bk) * headDim + 256 + bq * bk f32 in workgroup memory. Fewer queries for short tq.
 * NOTE: a decode step (tq = 1) runs one workgroup per head; splitting the keys too is left for later.
 */
function attentionTiles(d: number, tq: number): { bq: number; bk: number } {
  const bq = Math.min(d <= 64 ? 16 : d <= 128 ? 8 : 4, nextPow2(tq));
  let bk = 64;
  while (bk > 1 && (bq * bk > 256 || (bq + 2 * bk) * d + 256 + bq * bk > WORKGROUP_FLOATS)) bk /= 2;
  return { bq, bk };
}

function buildAttention(s: AttentionSpec): WebgpuRoutineSource {
  const { bq, bk } = attentionTiles(s.headDim, s.tq);
  const lanes = 256 / bq;
  const code = fillTemplate("attention", {
    BATCH: u32(s.batch), H: u32(s.heads), KVH: u32(s.kvHeads), TQ: u32(s.tq), TK: u32(s.tk), D: u32(s.headDim),
    CAUSAL: bool(s.causal), SCALE: f32(s.scale), BQ: u32(bq), BK: u32(bk), NP: u32(cdiv(cdiv(s.headDim, 2), lanes)),
  }, {
    BINDINGS: bindingsWgsl(s.out, [["q", s.dtype], ["k", s.dtype], ["v", s.dtype]]),
  });
  const name = `attention_${s.dtype}_${s.out}_b${s.batch}_h${s.heads}kv${s.kvHeads}_q${s.tq}k${s.tk}_d${s.headDim}${s.causal ? "_causal" : ""}`;
  return { name, code, dispatch: [cdiv(s.tq, bq), s.heads, Math.min(s.batch, MAX_DISPATCH)] };
}

/** Rows of attention_backward whose statistics (logsumexp, dO . o) share workgroup memory per chunk. */
const BACKWARD_ROW_CHUNK = 1024;

/** Whether attention_backward's rows per kv head take more than one chunk (dK, dV then accumulate in the output). */
const backwardChunked = (s: AttentionSpec): boolean => (s.heads / s.kvHeads) * s.tq > BACKWARD_ROW_CHUNK;

/** One workgroup of 64 threads per (kv head, batch); see shaders/attention_backward.wgsl. */
function buildAttentionBackward(s: AttentionSpec): WebgpuRoutineSource {
  const code = fillTemplate("attention_backward", {
    BATCH: u32(s.batch), H: u32(s.heads), KVH: u32(s.kvHeads), TQ: u32(s.tq), TK: u32(s.tk), D: u32(s.headDim),
    CAUSAL: bool(s.causal), SCALE: f32(s.scale), WG: u32(64), RC: u32(BACKWARD_ROW_CHUNK),
  }, {
    BINDINGS: bindingsWgsl(s.out, [["q", s.dtype], ["k", s.dtype], ["v", s.dtype], ["o", s.dtype], ["do", s.dtype]]),
  }, { CHUNKED: backwardChunked(s) });
  const name = `attention_backward_${s.dtype}_${s.out}_b${s.batch}_h${s.heads}kv${s.kvHeads}_q${s.tq}k${s.tk}_d${s.headDim}${s.causal ? "_causal" : ""}`;
  return { name, code, dispatch: [s.kvHeads, Math.min(s.batch, MAX_DISPATCH), 1] };
}

/** `groups` workgroups folded into an (x, y) grid within the per-dimension limit; shaders read y * nwg.x + x. */
function foldGrid(groups: number): [number, number, number] {
  const x = Math.min(groups, MAX_DISPATCH);
  return [x, cdiv(groups, x), 1];
}

/**
 * One invocation per destination word of a row, copying bits. f32 rows and packed rows of even length are
 * word-aligned (a word per invocation); packed rows of odd length start or end mid-word (HALVES).
 */
function buildKvWrite(s: KvWriteSpec): WebgpuRoutineSource {
  const halves = s.dtype !== "f32" && s.rowSize % 2 === 1;
  const wpr = s.dtype === "f32" ? s.rowSize : cdiv(s.rowSize, 2);
  const code = fillTemplate("kv_write", {
    ROWS: u32(s.rows), ROW: u32(s.rowSize), NUM_SLOTS: u32(s.numSlots), WPR: u32(wpr),
  }, {}, { HALVES: halves });
  const name = `kv_write_${s.dtype}_${s.rows}x${s.rowSize}_into_${s.numSlots}`;
  // NOTE: the cache operand is the output's own buffer: the shader reads and writes it through slot 0.
  return { name, code, dispatch: foldGrid(cdiv(s.rows * wpr, 256)), inPlaceSlot: 1 + ROUTINE_IN_PLACE.kv_write! };
}

/**
 * Query heads per workgroup (bq rows: up to a kv head's group) and keys per block, sized as attention's.
 * NOTE: a workgroup walks all of its token's keys; splitting long contexts across workgroups is left for later.
 */
function buildPagedAttention(s: PagedAttentionSpec): WebgpuRoutineSource {
  const { bq, bk } = attentionTiles(s.headDim, s.heads / s.kvHeads);
  const code = fillTemplate("paged_attention", {
    T: u32(s.numTokens), H: u32(s.heads), KVH: u32(s.kvHeads), D: u32(s.headDim), BS: u32(s.blockSize),
    NB: u32(s.numBlocks), NSEQ: u32(s.numSeqs), MB: u32(s.maxBlocksPerSeq), SCALE: f32(s.scale),
    BQ: u32(bq), BK: u32(bk), NP: u32(cdiv(cdiv(s.headDim, 2), 256 / bq)),
  }, {
    BINDINGS: [
      bindingsWgsl(s.out, [["q", s.dtype], ["k", s.dtype], ["v", s.dtype]]),
      indexWgsl("tables", 4), indexWgsl("tok_seq", 5), indexWgsl("tok_pos", 6),
    ].join("\n"),
  });
  const name = `paged_attention_${s.dtype}_${s.out}_t${s.numTokens}_h${s.heads}kv${s.kvHeads}_d${s.headDim}` +
    `_${s.numBlocks}x${s.blockSize}_s${s.numSeqs}x${s.maxBlocksPerSeq}`;
  const groups = s.kvHeads * cdiv(s.heads / s.kvHeads, bq);
  return { name, code, dispatch: [groups, Math.min(s.numTokens, MAX_DISPATCH), 1] };
}

/**
 * Row splits for scatter_add: enough (column, split) owners to fill about 16384 invocations when the
 * columns alone are fewer, each split a run of `rps` rows.
 */
function scatterSplits(s: ScatterAddSpec): { splits: number; rps: number } {
  const want = Math.min(s.rows, Math.max(1, cdiv(16384, s.cols)));
  const rps = cdiv(s.rows, want);
  return { splits: cdiv(s.rows, rps), rps };
}

function buildScatterAdd(s: ScatterAddSpec): WebgpuRoutineSource {
  const { splits, rps } = scatterSplits(s);
  const code = fillTemplate("scatter_add", { ROWS: u32(s.rows), COLS: u32(s.cols), N: u32(s.n), SPLITS: u32(splits), RPS: u32(rps) }, {});
  return { name: `scatter_add_${s.dtype}_${s.n}_into_${s.rows}x${s.cols}`, code, dispatch: foldGrid(cdiv(s.cols * splits, 64)) };
}

function buildConcat(s: ConcatSpec): WebgpuRoutineSource {
  const total = s.parts.reduce((a, b) => a + b, 0);
  let start = 0;
  const copy = s.parts.map((len, p) => {
    const line = `  if (c < ${u32(start + len)}) { out[gid] = part${p}[o * ${u32(len)} + c - ${u32(start)}]; return; }`;
    start += len;
    return line;
  });
  const code = fillTemplate("concat", { OUTER: u32(s.outer), TOTAL: u32(total) }, {
    BINDINGS: s.parts.map((_, p) => `@group(0) @binding(${p + 1}) var<storage, read> part${p}: array<u32>;`).join("\n"),
    COPY: copy.join("\n"),
  });
  return { name: `concat_${s.dtype}_${s.outer}x${s.parts.join("_")}`, code, dispatch: foldGrid(cdiv(s.outer * total, 256)) };
}

function buildMatmulQ(s: QuantMatmulSpec): WebgpuRoutineSource {
  const { blockElems, blockBytes } = STORAGE_FORMATS[s.format];
  const code = fillTemplate("matmul_q", {
    M: u32(s.m), N: u32(s.n), K: u32(s.k), ROW_BYTES: u32((s.k / blockElems) * blockBytes), BLOCK_BYTES: u32(blockBytes),
  }, {
    // NOTE: a block for the row dot, not //#if sections: those do not nest, and the Q8_0/Q4_0 dot has one inside.
    ROW_DOT: `  out[gid] = ${s.format === "q4_k" ? "row_dot_q4k" : s.format === "fp8e4m3_b128" ? "row_dot_fp8" : "row_dot_q"}(col, row * K);`,
  }, { Q4: s.format === "q4_0" });
  return { name: `matmul_q_${s.format}_${s.m}x${s.n}x${s.k}`, code, dispatch: foldGrid(cdiv(s.m * s.n, 64)) };
}

/** Whether buildWebgpuRoutine can build this spec; when not, the tensor layer falls back to primitive ops. */
export function supportsWebgpuRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R], caps: BackendCaps): boolean {
  return unsupportedReason(name, spec, caps) === undefined;
}

/** The WGSL and dispatch size of a routine; throws (naming the routine, spec and reason) when it is unsupported. */
export function buildWebgpuRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R], caps: BackendCaps): WebgpuRoutineSource {
  const reason = unsupportedReason(name, spec, caps);
  if (reason !== undefined) {
    const plain = JSON.stringify({ ...spec, epilogue: "epilogue" in spec && spec.epilogue ? "(set)" : undefined });
    throw new Error(`webgpu: routine '${name}' cannot build ${plain}: ${reason}`);
  }
  // NOTE: switched on as the union, not R: a type parameter never narrows to never, so a missing case would compile.
  const routine: RoutineName = name;
  switch (routine) {
    case "matmul": return buildMatmul(spec as MatmulSpec);
    case "softmax": return buildSoftmax(spec as SoftmaxSpec, caps);
    case "attention": return buildAttention(spec as AttentionSpec);
    case "attention_backward": return buildAttentionBackward(spec as AttentionSpec);
    case "kv_write": return buildKvWrite(spec as KvWriteSpec);
    case "paged_attention": return buildPagedAttention(spec as PagedAttentionSpec);
    case "scatter_add": return buildScatterAdd(spec as ScatterAddSpec);
    case "concat": return buildConcat(spec as ConcatSpec);
    case "matmul_q": return buildMatmulQ(spec as QuantMatmulSpec);
    default: return assertNever(routine, "routine");
  }
}
