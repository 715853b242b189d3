// render_wgsl.ts spells a KernelSpec as a WGSL compute shader with the meaning render_js.ts gives it.
// Owns the buffer layout in WGSL (bindings, packed loads and whole-word stores), the kernel's shape
// (one invocation per output word, or one workgroup per output word for long reductions) and the
// epilogue functions routines call. Op spellings live in wgsl_ops.ts; compiling and launching in backend.ts.
// A workgroup reduction reduces within each subgroup first where the device has subgroups (caps.subgroups),
// else through a tree in workgroup memory; both give the cpu backend's answer (NaN-sticky max included).
// NOTE: f16/bf16 compute in f32 here; a device with shader-f16 (caps.f16Math) could compute f16 natively,
// which would be one more computeType here. No adapter on our test machines has it, so none is written.
//
// Memory layout: a buffer holds the dtype's dense little-endian bytes (what Backend.write takes), so
// f16/bf16 sit 2 to a u32 word and u8/bool 4 to a word. Storage arrays are array<f32>, array<i32> or
// array<u32> (u32 and every packed dtype); loads unpack to the compute type (wgsl_ops.computeType).

import type { BackendCaps } from "../../core/backend.js";
import type { DType } from "../../core/dtype.js";
import type { Expr, KernelSpec } from "../../core/ir.js";
import type { Spelling } from "../../core/emit.js";
import { Emitter, dependsOn } from "../../core/emit.js";
import { toposort } from "../../core/ir.js";
import type { ReduceOp } from "../../core/ops.js";
import { assertNever } from "../../core/ops.js";
import type { Epilogue } from "../../core/routines.js";
import { computeType, f64Error, spellCast, spellConst, WGSL_ALU, wgslHelpers } from "./wgsl_ops.js";

/** Invocations per workgroup when each invocation computes one output word. */
export const WORKGROUP_SIZE = 64;
/** Invocations that share one output's reduction in a workgroup reduction. */
export const REDUCE_WORKGROUP_SIZE = 256;
// NOTE: one invocation per output leaves the GPU idle when there are few outputs and each reduces many
// values (a full sum is one invocation looping over everything); then a workgroup shares each output.
const WG_REDUCE_MIN_SIZE = 256;
const WG_REDUCE_MAX_WORDS = 16384;
// NOTE: WebGPU's smallest subgroup size is 4, so a workgroup holds at most this many subgroups.
const MAX_SUBGROUPS = REDUCE_WORKGROUP_SIZE / 4;

/** How a kernel computes an output: one invocation, a workgroup's tree, or a workgroup's subgroups. */
type ReduceShape = "thread" | "tree" | "subgroups";

const storageType = (d: DType): "f32" | "i32" | "u32" => (d === "f32" ? "f32" : d === "i32" ? "i32" : "u32");
/** Elements per u32 word in a buffer of this dtype. */
export const perWord = (d: DType): number => (d === "f16" || d === "bf16" ? 2 : d === "u8" || d === "bool" ? 4 : 1);

function loadBody(slot: number, d: DType): string {
  const b = `b${slot}`;
  const byte = `(${b}[i >> 2u] >> (u32(i & 3) * 8u)) & 0xffu`;
  switch (d) {
    case "f32": case "i32": case "u32": return `${b}[i]`;
    case "f16": return `unpack2x16float(${b}[i >> 1u])[i & 1]`;
    case "bf16": return `bitcast<f32>((${b}[i >> 1u] >> (u32(i & 1) * 16u)) << 16u)`;
    case "u8": return byte;
    case "bool": return `(${byte}) != 0u`;
    case "f64": throw f64Error();
    default: return assertNever(d, "dtype");
  }
}

/**
 * Declares buffer slot `slot` as `b{slot}` at @group(0) @binding(slot), with `fn ld{slot}(i: i32) -> T`
 * returning element i in its compute type (f32 for f32/f16/bf16, i32, u32 for u32/u8, bool).
 */
export function wgslBinding(slot: number, dtype: DType, access: "read" | "read_write"): string {
  return [
    `@group(0) @binding(${slot}) var<storage, ${access}> b${slot}: array<${storageType(dtype)}>;`,
    `fn ld${slot}(i: i32) -> ${computeType(dtype)} { return ${loadBody(slot, dtype)}; }`,
  ].join("\n");
}

const WGSL_SPELLING: Spelling = {
  decl: "let",
  constant: (v, e) => spellConst(v, e.dtype),
  node: (e, ref) => {
    switch (e.k) {
      case "load": return `ld${e.slot}(${spellCast(ref(e.idx), e.idx.dtype, "i32")})`;
      case "alu": return WGSL_ALU[e.op](e.src.map(ref), e.src[0]!.dtype, e.src);
      case "cast": return spellCast(ref(e.src), e.src.dtype, e.dtype);
      default: return assertNever(e, "render_wgsl expression");
    }
  },
};

/** Throws a named error for what WGSL cannot spell: f64 anywhere, loads from missing slots or as the wrong dtype. */
function check(where: string, root: Expr, slots: ReadonlyMap<number, DType>, vars: readonly string[]): void {
  for (const e of toposort(root)) {
    if (e.dtype === "f64") throw f64Error(where);
    if (e.k === "var" && !vars.includes(e.name)) throw new Error(`webgpu: ${where} reads '${e.name}', which is not defined there`);
    if (e.k !== "load") continue;
    const d = slots.get(e.slot);
    if (d === undefined) throw new Error(`webgpu: ${where} loads slot ${e.slot}, which it does not have (slots ${[...slots.keys()].join(", ")})`);
    if (d !== e.dtype) throw new Error(`webgpu: ${where} loads slot ${e.slot} as ${e.dtype}, but the slot holds ${d}`);
  }
}

const indent = (lines: readonly string[]) => lines.map((l) => `  ${l}`);

function reduceInit(op: ReduceOp, d: DType, size: number): string {
  if (op === "sum" || computeType(d) === "bool" || computeType(d) === "u32") return spellConst(0, d);
  // NOTE: JS starts an i32 max at -Infinity, which an empty reduction stores as 0.
  if (computeType(d) === "i32") return spellConst(size === 0 ? 0 : -2147483648, d);
  return spellConst(-Infinity, d);
}

/**
 * The reduction's combining step. Float max keeps NaN sticky (k_fmax), as render_js does; a u8 sum is
 * not wrapped (JS adds in doubles and wraps only when it stores).
 */
function combine(op: ReduceOp, d: DType, a: string, b: string): string {
  if (op === "max") return WGSL_ALU.max([a, b], d, []);
  return d === "bool" ? `(${a} || ${b})` : `(${a} + ${b})`;
}

/**
 * Folds each invocation's `acc` into the workgroup's, leaving it in every invocation's `acc`:
 * a tree in k_sh, or a reduction within each subgroup, its result in slot k_sh[subgroup id], then a
 * walk over those slots in order (the same order on every run: float sums reproduce).
 */
function workgroupFold(op: ReduceOp, d: DType, shape: "tree" | "subgroups", packed: boolean): string[] {
  // NOTE: k_sh is reused by the next element of a packed output word: nobody may write it before all have read.
  const reuse = packed ? ["workgroupBarrier();"] : [];
  if (shape === "tree") {
    return [
      "k_sh[lid] = acc;",
      "workgroupBarrier();",
      `for (var s = ${REDUCE_WORKGROUP_SIZE / 2}u; s > 0u; s = s >> 1u) {`,
      `  if (lid < s) { k_sh[lid] = ${combine(op, d, "k_sh[lid]", "k_sh[lid + s]")}; }`,
      "  workgroupBarrier();",
      "}",
      "acc = k_sh[0];",
      ...reuse,
    ];
  }
  return [
    `acc = ${subgroupReduce(op, d, "acc")};`,
    "if (subgroupElect()) { k_sh[sgid] = acc; }",
    "workgroupBarrier();",
    "acc = k_sh[0];",
    `for (var s = 1u; s < nsg; s++) { acc = ${combine(op, d, "acc", "k_sh[s]")}; }`,
    ...reuse,
  ];
}

/** The reduction of `x` over the subgroup, as `combine` would give it. */
function subgroupReduce(op: ReduceOp, d: DType, x: string): string {
  const t = computeType(d);
  // NOTE: bool's sum and max are both `or`.
  if (t === "bool") return `subgroupAny(${x})`;
  if (op === "sum") return `subgroupAdd(${x})`;
  return t === "f32" ? `k_sg_fmax(${x})` : `subgroupMax(${x})`;
}

/**
 * NOTE: subgroupMax on floats may drop NaN or mishandle infinities (WGSL lets implementations assume
 * there are none). NaN is found by its bits, as k_fmax does, and the max of the rest is taken on integer
 * keys that order floats as numbers (-inf < ... < -0 < 0 < ... < inf). Which zero a max of zeros gives
 * is left open, as in k_fmax (the cpu backend keeps the first one it meets).
 */
const SUBGROUP_FMAX = `fn k_sg_fmax(x: f32) -> f32 {
  let b = bitcast<i32>(x);
  let m = subgroupMax(b ^ ((b >> 31u) & 0x7fffffff));
  return select(bitcast<f32>(m ^ ((m >> 31u) & 0x7fffffff)), k_nan(), subgroupAny(k_isnan(x)));
}`;

/** `fn value(gid[, lid[, sgid, nsg]]) -> T`: the output element's value, cast to what the output stores (f16/bf16 as f32). */
function renderValue(k: KernelSpec, shape: ReduceShape): string[] {
  const storeAs: DType = k.out === "f16" || k.out === "bf16" ? "f32" : k.out;
  const lines: string[] = [];
  const em = new Emitter("t", WGSL_SPELLING);
  let value: string;
  let valueType: DType;
  if (k.reduce) {
    const { op, size, dtype } = k.reduce;
    // Loop-invariant parts of the body (the output's own index math) are computed once per element.
    em.emit(k.body, lines, dependsOn(k.body, "ridx"));
    lines.push(`var acc: ${computeType(dtype)} = ${reduceInit(op, dtype, size)};`);
    lines.push(shape !== "thread" ? `for (var ridx = i32(lid); ridx < ${size}; ridx += ${REDUCE_WORKGROUP_SIZE}) {` : `for (var ridx = 0; ridx < ${size}; ridx++) {`);
    const inner: string[] = [];
    const x = spellCast(em.emit(k.body, inner), k.body.dtype, dtype);
    lines.push(...indent(inner), `  acc = ${combine(op, dtype, "acc", x)};`, "}");
    if (shape !== "thread") lines.push(...workgroupFold(op, dtype, shape, perWord(k.out) > 1));
    value = k.epilogue ? new Emitter("e", WGSL_SPELLING).emit(k.epilogue, lines) : "acc";
    valueType = k.epilogue ? k.epilogue.dtype : dtype;
  } else {
    value = em.emit(k.body, lines);
    valueType = k.body.dtype;
  }
  const params = `gid: i32${shape === "thread" ? "" : ", lid: u32"}${shape === "subgroups" ? ", sgid: u32, nsg: u32" : ""}`;
  return [`fn value(${params}) -> ${computeType(storeAs)} {`, ...indent(lines), `  return ${spellCast(value, valueType, storeAs)};`, "}"];
}

/** The bits of one packed output element (value() already returned it in the output's compute type). */
function packBits(d: DType, x: string): string {
  if (d === "f16") return `k_f2h(${x})`;
  if (d === "bf16") return `k_f2bh(${x})`;
  if (d === "bool") return `select(0u, 1u, ${x})`;
  return `(${x} & 0xffu)`; // u8; a u8 sum is not wrapped until it is stored, as in JS
}

/** Stores output word `w`: whole words only, so no two invocations write the same word. */
function renderStore(k: KernelSpec, shape: ReduceShape): string[] {
  const wgReduce = shape !== "thread";
  const args = shape === "thread" ? "" : shape === "tree" ? ", lid" : ", lid, sgid, nsg";
  const call = (gid: string) => `value(${gid}${args})`;
  const store = (val: string) => (wgReduce ? `if (lid == 0u) { b0[w] = ${val}; }` : `b0[w] = ${val};`);
  const p = perWord(k.out);
  if (p === 1) return wgReduce ? [`let r = ${call("w")};`, store("r")] : [store(call("w"))];
  const bitsPer = 32 / p;
  // NOTE: elements past n in the last word keep their bits: the buffer may be longer than this kernel's output.
  const keep = k.n % p === 0 ? "0u" : `(b0[w] >> (u32(j) * ${bitsPer}u)) & ${bitsPer === 16 ? "0xffffu" : "0xffu"}`;
  return [
    "var word = 0u;",
    `for (var j = 0; j < ${p}; j++) {`,
    `  let gid = w * ${p} + j;`,
    `  var bits = ${keep};`,
    `  if (gid < ${k.n}) { bits = ${packBits(k.out, call("gid"))}; }`,
    `  word = word | (bits << (u32(j) * ${bitsPer}u));`,
    "}",
    store("word"),
  ];
}

/** A rendered kernel: its WGSL and how many workgroups to launch (the backend folds them into a 2-D grid). */
export interface WgslKernel {
  readonly code: string;
  readonly workgroups: number;
}

/**
 * The WGSL of a generated kernel: buffer slot 0 is the output, slots 1.. the inputs. Invocation (or, for
 * a workgroup reduction, workgroup) w computes output word w; a 2-D dispatch is read back as one index.
 * With caps.subgroups a workgroup reduction uses subgroup operations (the source then enables them).
 */
export function renderWgsl(k: KernelSpec, caps: Pick<BackendCaps, "subgroups"> = { subgroups: false }): WgslKernel {
  const where = `kernel '${k.name}'`;
  const slotTypes = [k.out, ...k.inputs];
  if (slotTypes.includes("f64") || k.reduce?.dtype === "f64") throw f64Error(where);
  const slots = new Map(slotTypes.map((d, i) => [i, d] as const));
  check(where, k.body, slots, k.reduce ? ["gid", "ridx"] : ["gid"]);
  if (k.epilogue) check(`${where} (epilogue)`, k.epilogue, slots, ["gid", "acc"]);

  const words = Math.ceil(k.n / perWord(k.out));
  const wgReduce = !!k.reduce && k.reduce.size >= WG_REDUCE_MIN_SIZE && words <= WG_REDUCE_MAX_WORDS;
  const shape: ReduceShape = !wgReduce ? "thread" : caps.subgroups ? "subgroups" : "tree";
  const size = wgReduce ? REDUCE_WORKGROUP_SIZE : WORKGROUP_SIZE;
  const index = wgReduce ? "i32(wid.y * nwg.x + wid.x)" : `i32((wid.y * nwg.x + wid.x) * ${size}u + lid)`;
  const shared = shape === "thread" ? [] : [`var<workgroup> k_sh: array<${computeType(k.reduce!.dtype)}, ${shape === "tree" ? REDUCE_WORKGROUP_SIZE : MAX_SUBGROUPS}>;`];
  const subgroupIds = shape === "subgroups" ? " @builtin(subgroup_id) sgid: u32, @builtin(num_subgroups) nsg: u32," : "";
  const lines = [
    ...(shape === "subgroups" ? ["enable subgroups;", "requires subgroup_id;"] : []),
    `// n=${k.n} out=${k.out} inputs=[${k.inputs.join(", ")}]` +
      (k.reduce ? ` reduce=${k.reduce.op}(${k.reduce.size}, ${k.reduce.dtype})${wgReduce ? ` per workgroup (${shape})` : ""}` : ""),
    ...slotTypes.map((d, i) => wgslBinding(i, d, i === 0 ? "read_write" : "read")),
    ...shared,
    ...renderValue(k, shape),
    `@compute @workgroup_size(${size})`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,${subgroupIds} @builtin(local_invocation_index) lid: u32) {`,
    `  let w = ${index};`,
    `  if (w >= ${words}) { return; }`,
    ...indent(renderStore(k, shape)),
    "}",
  ];
  if (lines.some((l) => l.includes("k_sg_fmax("))) lines.push(SUBGROUP_FMAX);
  const body = lines.join("\n");
  const helpers = wgslHelpers(body);
  return { code: helpers ? `${body}\n${helpers}\n` : `${body}\n`, workgroups: wgReduce ? words : Math.ceil(words / size) };
}

/**
 * For routines: bindings of an epilogue's inputs (slot firstSlot + i holds epi.inputs[i]; its expression
 * loads those absolute slots) and `fn epilogue(acc: f32, gid: i32) -> f32` computing epi.expr, with the
 * helper functions it calls. `acc` is the routine's value at output element `gid`.
 */
export function renderEpilogueWgsl(epi: Epilogue, firstSlot: number): string {
  const slots = new Map(epi.inputs.map((d, i) => [firstSlot + i, d] as const));
  check("an epilogue", epi.expr, slots, ["gid", "acc"]);
  const lines: string[] = [];
  const value = new Emitter("e", WGSL_SPELLING).emit(epi.expr, lines);
  const body = [
    ...epi.inputs.map((d, i) => wgslBinding(firstSlot + i, d, "read")),
    "fn epilogue(acc: f32, gid: i32) -> f32 {",
    ...indent(lines),
    `  return ${spellCast(value, epi.expr.dtype, "f32")};`,
    "}",
  ].join("\n");
  const helpers = wgslHelpers(body);
  return helpers ? `${body}\n${helpers}` : body;
}
