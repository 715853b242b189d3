// render_cuda.ts spells a KernelSpec as a CUDA C kernel with the meaning render_js.ts gives it.
// Owns the kernel's shape (one thread per output element, or one block per output for long reductions
// over few outputs), its signature and its launch geometry. Op spellings and the prelude live in
// cuda_ops.ts; compiling (NVRTC at run time, nvcc in CI) and launching belong to the runtime.
// Buffers hold each dtype's dense little-endian bytes (what Backend.write takes); CUDA addresses bytes,
// so unlike WGSL nothing is packed: f16/bf16 are `unsigned short` bits, u8/bool `unsigned char`.
// NOTE: f16/bf16 compute in float and round where a cast or store says so, as the JS and WGSL renderers do.
// Reductions accumulate in the reduced dtype's compute type (float for f32), where JS sums in doubles:
// long float sums differ from the cpu backend by rounding, within the conformance tolerances.

import type { DType } from "../../core/dtype.js";
import type { Expr, KernelSpec } from "../../core/ir.js";
import type { ComputedExpr, Spelling } from "../../core/emit.js";
import { Emitter, dependsOn } from "../../core/emit.js";
import { hashString, toposort } from "../../core/ir.js";
import type { ReduceOp } from "../../core/ops.js";
import { assertNever } from "../../core/ops.js";
import { CUDA_ALU, CUDA_PRELUDE, computeType, spellCast, spellConst, storageType } from "./cuda_ops.js";

/** Threads per block when each thread computes one output element. */
export const BLOCK_SIZE = 256;
/** Threads that share one output's reduction in a block reduction (a power of two: the tree halves it). */
export const REDUCE_BLOCK_SIZE = 256;
// NOTE: one thread per output leaves the GPU idle when there are few outputs and each reduces many
// values (a full sum is one thread looping over everything); then a block shares each output.
// Same thresholds as render_wgsl.ts, so the two backends cut the same kernels the same way.
const BLOCK_REDUCE_MIN_SIZE = 256;
const BLOCK_REDUCE_MAX_OUTPUTS = 16384;

/**
 * A rendered kernel: its source (without the prelude) and how to launch it. Its parameters are the
 * buffers in slot order (output first), then each input's length in elements, as `unsigned`.
 */
export interface CudaKernel {
  /** The `extern "C"` entry point: the kernel's name and a hash of its source, unique per source. */
  readonly entry: string;
  readonly code: string;
  readonly grid: number;
  readonly block: number;
  /** Whether threads of a block wait for each other (__syncthreads): a host shim must run them concurrently. */
  readonly blockSync: boolean;
}

const CUDA_SPELLING: Spelling = {
  decl: (e: ComputedExpr) => `const ${computeType(e.dtype)}`,
  constant: (v, e) => spellConst(v, e.dtype),
  node: (e, ref) => {
    switch (e.k) {
      case "load": return spellLoad(e.slot, ref(e.idx), e.dtype);
      case "alu": return CUDA_ALU[e.op](e.src.map(ref), e.src[0]!.dtype, e.src);
      case "cast": return spellCast(ref(e.src), e.src.dtype, e.dtype);
      default: return assertNever(e, "render_cuda expression");
    }
  },
};

/**
 * Element idx of slot `slot`, or 0 when idx is outside the buffer's n{slot} elements.
 * NOTE: a `where` picks between values its renderer has already computed, so a pad or an out-of-range
 * gather still loads at the index it then discards (-1, or past the end); JS reads `undefined` there and
 * WGSL's robust buffer access clamps, but in CUDA that load is an illegal address. One unsigned compare
 * covers both ends.
 */
function spellLoad(slot: number, idx: string, d: DType): string {
  const zero = { f32: "0.0f", f64: "0.0", f16: "(unsigned short)0", bf16: "(unsigned short)0", i32: "0", u32: "0u", u8: "(unsigned char)0", bool: "(unsigned char)0" }[d];
  const at = `((unsigned)(${idx}) < n${slot} ? b${slot}[${idx}] : ${zero})`;
  switch (d) {
    case "f32": case "f64": case "i32": case "u32": return at;
    case "f16": return `k_h2f(${at})`;
    case "bf16": return `k_bh2f(${at})`;
    case "u8": return `((unsigned)${at})`;
    case "bool": return `(${at} != 0)`;
    default: return assertNever(d, "dtype");
  }
}

/** The stored bits of a value already in the output's compute type. */
function spellStore(d: DType, x: string): string {
  switch (d) {
    case "f32": case "f64": case "i32": case "u32": return x;
    case "f16": return `k_f2h(${x})`;
    case "bf16": return `k_f2bh(${x})`;
    case "u8": return `(unsigned char)(${x})`;
    case "bool": return `(unsigned char)(${x} ? 1 : 0)`;
    default: return assertNever(d, "dtype");
  }
}

/** Throws a named error for a load from a missing slot or as the wrong dtype, or a variable not defined there. */
function check(where: string, root: Expr, slots: readonly DType[], vars: readonly string[]): void {
  for (const e of toposort(root)) {
    if (e.k === "var" && !vars.includes(e.name)) throw new Error(`cuda: ${where} reads '${e.name}', which is not defined there`);
    if (e.k !== "load") continue;
    const d = slots[e.slot];
    if (d === undefined) throw new Error(`cuda: ${where} loads slot ${e.slot}, which it does not have (slots 0..${slots.length - 1})`);
    if (d !== e.dtype) throw new Error(`cuda: ${where} loads slot ${e.slot} as ${e.dtype}, but the slot holds ${d}`);
  }
}

function reduceInit(op: ReduceOp, d: DType, size: number): string {
  const t = computeType(d);
  if (op === "sum" || t === "bool" || t === "unsigned") return spellConst(0, d);
  // NOTE: JS starts an i32 max at -Infinity, which an empty reduction stores as 0.
  if (t === "int") return spellConst(size === 0 ? 0 : -2147483648, d);
  return spellConst(-Infinity, d);
}

/** `a` combined with `b` as the reduction combines them: NaN-sticky float max, wrapping i32 sum, `or` for bool. */
function combine(op: ReduceOp, d: DType, a: string, b: string): string {
  if (op === "max") return CUDA_ALU.max([a, b], d, []);
  if (d === "bool") return `(${a} || ${b})`;
  return d === "i32" ? CUDA_ALU.add([a, b], d, []) : `(${a} + ${b})`;
}

const indent = (lines: readonly string[]) => lines.map((l) => `  ${l}`);

/** A C identifier for the kernel: its name, made safe, and a hash of its source. */
const entryName = (name: string, code: string) => `k_${name.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 48)}_${hashString(code)}`;

/**
 * The CUDA C of a generated kernel (without CUDA_PRELUDE, so a translation unit can hold many): buffer
 * slot 0 is the output, slots 1.. the inputs. Thread gid computes output element gid; in a block
 * reduction block gid does, its threads striding over ridx and folding through a tree in shared memory
 * (the same order every run, so float sums reproduce).
 */
export function renderCuda(k: KernelSpec): CudaKernel {
  const where = `kernel '${k.name}'`;
  const slots = [k.out, ...k.inputs];
  check(where, k.body, slots, k.reduce ? ["gid", "ridx"] : ["gid"]);
  if (k.epilogue) check(`${where} (epilogue)`, k.epilogue, slots, ["gid", "acc"]);
  if (k.epilogue && !k.reduce) throw new Error(`cuda: ${where} has an epilogue but no reduction`);

  const blockReduce = !!k.reduce && k.reduce.size >= BLOCK_REDUCE_MIN_SIZE && k.n <= BLOCK_REDUCE_MAX_OUTPUTS;
  const block = blockReduce ? REDUCE_BLOCK_SIZE : BLOCK_SIZE;
  // NOTE: the kernel ABI: the output, the inputs, then each input's length in elements (for spellLoad).
  const params = [
    ...slots.map((d, i) => `${i === 0 ? "" : "const "}${storageType(d)}* b${i}`),
    ...k.inputs.map((_, i) => `unsigned n${i + 1}`),
  ].join(", ");
  const lines: string[] = [];
  lines.push(blockReduce ? "const int gid = (int)blockIdx.x;" : "const int gid = (int)(blockIdx.x * blockDim.x + threadIdx.x);");
  lines.push(`if (gid >= ${k.n}) return;`);
  const em = new Emitter("t", CUDA_SPELLING);
  let value: string;
  let valueType: DType;
  if (k.reduce) {
    const { op, size, dtype } = k.reduce;
    const t = computeType(dtype);
    // Loop-invariant parts of the body (the output's own index math) are computed once per element.
    em.emit(k.body, lines, dependsOn(k.body, "ridx"));
    lines.push(`${t} acc = ${reduceInit(op, dtype, size)};`);
    lines.push(blockReduce ? `for (int ridx = (int)threadIdx.x; ridx < ${size}; ridx += ${block}) {` : `for (int ridx = 0; ridx < ${size}; ridx++) {`);
    const inner: string[] = [];
    const x = spellCast(em.emit(k.body, inner), k.body.dtype, dtype);
    lines.push(...indent(inner), `  acc = ${combine(op, dtype, "acc", x)};`, "}");
    if (blockReduce) {
      lines.push(
        "k_sh[threadIdx.x] = acc;",
        "__syncthreads();",
        `for (unsigned s = ${block / 2}u; s > 0u; s >>= 1) {`,
        `  if (threadIdx.x < s) k_sh[threadIdx.x] = ${combine(op, dtype, "k_sh[threadIdx.x]", "k_sh[threadIdx.x + s]")};`,
        "  __syncthreads();",
        "}",
        "if (threadIdx.x != 0) return;",
        "acc = k_sh[0];",
      );
    }
    // NOTE: the epilogue reads the reduced value as it would be stored (render_js.ts does the same), so
    // fusing a tail into the reduction gives the bits it gives as a kernel of its own.
    if (k.epilogue && (dtype === "f16" || dtype === "bf16")) lines.push(`acc = ${spellCast("acc", "f32", dtype)};`);
    value = k.epilogue ? new Emitter("e", CUDA_SPELLING).emit(k.epilogue, lines) : "acc";
    valueType = k.epilogue ? k.epilogue.dtype : dtype;
  } else {
    value = em.emit(k.body, lines);
    valueType = k.body.dtype;
  }
  lines.push(`b0[gid] = ${spellStore(k.out, spellCast(value, valueType, k.out))};`);
  const shared = blockReduce ? [`  __shared__ ${computeType(k.reduce!.dtype)} k_sh[${block}];`] : [];
  const comment = `// ${k.name}: n=${k.n} out=${k.out} inputs=[${k.inputs.join(", ")}]` +
    (k.reduce ? ` reduce=${k.reduce.op}(${k.reduce.size}, ${k.reduce.dtype})${blockReduce ? " per block" : ""}` : "");
  // The entry's hash covers everything after its name, so equal names with different code never clash.
  const rest = [`(${params}) {`, ...shared, ...indent(lines), "}"].join("\n");
  const entry = entryName(k.name, rest);
  return {
    entry,
    code: `${comment}\nextern "C" __global__ void __launch_bounds__(${block}) ${entry}${rest}\n`,
    grid: blockReduce ? k.n : Math.ceil(k.n / block),
    block,
    blockSync: blockReduce,
  };
}

/** A whole translation unit for one kernel (what NVRTC compiles at run time). */
export function cudaSource(k: KernelSpec): { readonly kernel: CudaKernel; readonly source: string } {
  const kernel = renderCuda(k);
  return { kernel, source: `${CUDA_PRELUDE}\n${kernel.code}` };
}
