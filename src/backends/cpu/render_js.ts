// render_js.ts spells a KernelSpec as a JavaScript function: the living spec of what every op means.
// JS numbers are doubles, so float math here is at least as precise as any device's, and f64 is exact.
// Owns the JS spelling of each op (one table keyed by the op table); not compilation or launching.

import type { DType } from "../../core/dtype.js";
import type { Expr, KernelSpec } from "../../core/ir.js";
import type { Spelling } from "../../core/emit.js";
import { Emitter, dependsOn } from "../../core/emit.js";
import { toposort } from "../../core/ir.js";
import type { AluOp } from "../../core/ops.js";
import type { Epilogue } from "../../core/routines.js";
import { assertNever } from "../../core/ops.js";
import { COLUMN_BLOCK, reducesAlongOutputs, shiftGid } from "./reduce_order.js";

const isFloatT = (d: DType) => d === "f64" || d === "f32" || d === "f16" || d === "bf16";

/** Wrap an integer result back into its dtype's range (JS computes in doubles). */
function wrapInt(s: string, d: DType): string {
  if (d === "i32") return `((${s}) | 0)`;
  if (d === "u32") return `((${s}) >>> 0)`;
  if (d === "u8") return `((${s}) & 255)`;
  return s;
}

/** The integer dtypes wrapInt wraps (and so truncates). */
const WRAPPED: ReadonlySet<DType> = new Set(["i32", "u32", "u8"]);
/** A divisor that needs no `=== 0` guard. */
const nonZeroConst = (e: Expr): boolean => e.k === "const" && e.v !== 0;

type Spell = (a: string[], d: DType, src: readonly Expr[]) => string;

/** The JS spelling of every ALU op. Keyed by the op table: adding an op without a spelling fails to compile. */
export const JS_ALU: Readonly<Record<AluOp, Spell>> = {
  neg: ([a], d) => (isFloatT(d) ? `(-${a})` : wrapInt(`-${a}`, d)),
  recip: ([a]) => `(1 / ${a})`,
  sqrt: ([a]) => `Math.sqrt(${a})`,
  exp: ([a]) => `Math.exp(${a})`,
  log: ([a]) => `Math.log(${a})`,
  sin: ([a]) => `Math.sin(${a})`,
  cos: ([a]) => `Math.cos(${a})`,
  // NOTE: float precision for float math (kernel_helpers.ts tanhF: 5x faster); f64 stays exact.
  tanh: ([a], d) => (d === "f64" ? `Math.tanh(${a})` : `tanhF(${a})`),
  abs: ([a], d) => (isFloatT(d) ? `Math.abs(${a})` : wrapInt(`Math.abs(${a})`, d)),
  floor: ([a], d) => (isFloatT(d) ? `Math.floor(${a})` : a!),
  not: ([a], d) => (d === "bool" ? `(!${a})` : wrapInt(`~${a}`, d)),
  add: ([a, b], d) => (isFloatT(d) ? `(${a} + ${b})` : d === "bool" ? `(${a} || ${b})` : wrapInt(`${a} + ${b}`, d)),
  sub: ([a, b], d) => (isFloatT(d) ? `(${a} - ${b})` : wrapInt(`${a} - ${b}`, d)),
  mul: ([a, b], d) =>
    isFloatT(d) ? `(${a} * ${b})` : d === "bool" ? `(${a} && ${b})` : wrapInt(`Math.imul(${a}, ${b})`, d),
  // NOTE: integer division truncates toward zero, and x / 0 is x for ints, as in WGSL. The wrap (ToInt32,
  // ToUint32) truncates a finite quotient by itself, and V8 compiles `(a / b) | 0` to an integer division.
  div: ([a, b], d, src) =>
    isFloatT(d) ? `(${a} / ${b})`
    : !WRAPPED.has(d) ? `(${b} === 0 ? ${a} : Math.trunc(${a} / ${b}))`
    : wrapInt(nonZeroConst(src[1]!) ? `${a} / ${b}` : `(${b} === 0 ? ${a} : ${a} / ${b})`, d),
  max: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : `Math.max(${a}, ${b})`),
  min: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : `Math.min(${a}, ${b})`),
  pow: ([a, b]) => `Math.pow(${a}, ${b})`,
  // NOTE: remainder takes the dividend's sign (truncated), as in WGSL and C; x % 0 is 0 for ints.
  mod: ([a, b], d, src) =>
    isFloatT(d) ? `(${a} % ${b})` : wrapInt(nonZeroConst(src[1]!) ? `${a} % ${b}` : `(${b} === 0 ? 0 : ${a} % ${b})`, d),
  cmplt: ([a, b]) => `(${a} < ${b})`,
  cmpeq: ([a, b]) => `(${a} == ${b})`,
  cmpne: ([a, b]) => `(${a} != ${b})`,
  and: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : wrapInt(`${a} & ${b}`, d)),
  or: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : wrapInt(`${a} | ${b}`, d)),
  xor: ([a, b], d) => (d === "bool" ? `(!${a} != !${b})` : wrapInt(`${a} ^ ${b}`, d)),
  shl: ([a, b], d) => wrapInt(`${a} << ${b}`, d),
  shr: ([a, b], d) => (d === "u32" ? `(${a} >>> ${b})` : d === "u8" ? `(${a} >>> ${b})` : `(${a} >> ${b})`),
  where: ([c, a, b]) => `(${c} ? ${a} : ${b})`,
};

function spellCast(a: string, from: DType, to: DType): string {
  if (from === "bool") return isFloatT(to) || to !== "bool" ? `(${a} ? 1 : 0)` : a;
  switch (to) {
    case "bool": return `(${a} != 0)`;
    case "f64": return a;
    case "f32": return `Math.fround(${a})`;
    case "f16": return `f16round(${a})`;
    case "bf16": return `bf16round(${a})`;
    case "i32": return isFloatT(from) ? `(Math.trunc(${a}) | 0)` : `(${a} | 0)`;
    case "u32": return isFloatT(from) ? `(Math.trunc(${a}) >>> 0)` : `(${a} >>> 0)`;
    case "u8": return isFloatT(from) ? `(Math.trunc(${a}) & 255)` : `(${a} & 255)`;
    default: return assertNever(to, "dtype");
  }
}

function spellConst(v: number, d: DType): string {
  if (d === "bool") return v ? "true" : "false";
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "(-Infinity)";
  if (Object.is(v, -0)) return "(-0)";
  return v < 0 ? `(${v})` : String(v);
}

function spellLoad(slot: number, idx: string, d: DType): string {
  if (d === "f16") return `h2f(b${slot}[${idx}])`;
  if (d === "bf16") return `bh2f(b${slot}[${idx}])`;
  return `b${slot}[${idx}]`;
}

function spellStore(d: DType, val: string): string {
  if (d === "f16") return `f2h(${val})`;
  if (d === "bf16") return `f2bh(${val})`;
  if (d === "bool") return `(${val} ? 1 : 0)`;
  return val;
}

const JS_SPELLING: Spelling = {
  decl: "const",
  constant: (v, e) => spellConst(v, e.dtype),
  node: (e, ref) => {
    switch (e.k) {
      case "load": return spellLoad(e.slot, ref(e.idx), e.dtype);
      case "alu": return JS_ALU[e.op](e.src.map(ref), e.src[0]!.dtype, e.src);
      case "cast": return spellCast(ref(e.src), e.src.dtype, e.dtype);
      default: return assertNever(e, "render_js expression");
    }
  },
};

/** The JS source of a kernel: `function(b0, b1, ...)` over typed-array views of its buffers. */
export function renderJs(k: KernelSpec): string {
  const params = ["b0", ...k.inputs.map((_, i) => `b${i + 1}`)];
  const lines: string[] = [];
  lines.push(`return function ${k.name.replace(/[^A-Za-z0-9_]/g, "_")}(${params.join(", ")}) {`);
  if (reducesAlongOutputs(k)) return renderColumnBlocks(k, lines);
  const em = new Emitter("t", JS_SPELLING);
  const row = k.reduce ? undefined : rowLength(k);
  if (row === undefined) {
    lines.push(`for (let gid = 0; gid < ${k.n}; gid++) {`);
  } else {
    // NOTE: gid runs over rows of `row` elements, and nodes that read gid only as gid / D with row | D
    // (a row's mean, a bias row's index) are computed once per row, under an outer `gid` that is the
    // row's first element: the same values, in the same order, as the flat loop computes per element.
    lines.push(`for (let row = 0; row < ${k.n}; row += ${row}) {`, `const gid = row;`);
    em.emit(k.body, lines, readsGidWithin(k.body, row));
    lines.push(`for (let gid = row; gid < row + ${row}; gid++) {`);
  }
  let value: string;
  if (k.reduce) {
    const { op, size } = k.reduce;
    const dep = dependsOn(k.body, "ridx");
    // Loop-invariant parts of the body (the output's own index math) are computed once per element.
    em.emit(k.body, lines, dep);
    lines.push(`let acc = ${reduceInit(k.reduce)};`);
    lines.push(`for (let ridx = 0; ridx < ${size}; ridx++) {`);
    const x = em.emit(k.body, lines);
    // NOTE: `x !== x` keeps NaN sticky in max, as Math.max does, without calling it per element.
    lines.push(op === "sum" ? `acc += ${x};` : `if (${x} > acc || ${x} !== ${x}) acc = ${x};`);
    lines.push(`}`);
    value = reducedValue(k, k.epilogue, lines);
  } else {
    value = em.emit(k.body, lines);
  }
  lines.push(`b0[gid] = ${spellStore(k.out, value)};`);
  lines.push(`}`, ...(row === undefined ? [] : [`}`]), `};`);
  return lines.join("\n");
}

const reduceInit = (r: NonNullable<KernelSpec["reduce"]>) => (r.op === "sum" || r.dtype === "u32" || r.dtype === "u8" ? "0" : "-Infinity");

/** Lines after the reduced value is in `acc`: the epilogue's, if any; returns out[gid]'s value. */
function reducedValue(k: KernelSpec, epilogue: Expr | undefined, lines: string[]): string {
  // NOTE: the epilogue reads the reduced value as it would be stored (a double sum rounded to its dtype),
  // so fusing a tail into the reduction gives the same bits as running it as a kernel of its own.
  if (epilogue && isFloatT(k.reduce!.dtype)) lines.push(`acc = ${spellCast("acc", "f64", k.reduce!.dtype)};`);
  return epilogue ? new Emitter("e", JS_SPELLING).emit(epilogue, lines) : "acc";
}

/**
 * A reduction over COLUMN_BLOCK neighbouring outputs at a time (reduce_order.ts says when): the body
 * is emitted once per column with gid shifted, each column summing into its own local, so one pass over
 * ridx reads a piece of each row instead of one element per row. Nodes that do not read gid (a row's
 * mean) are shared by the columns. Each output still sums over ridx in increasing order in a double.
 */
function renderColumnBlocks(k: KernelSpec, lines: string[]): string {
  const { op, size } = k.reduce!;
  const em = new Emitter("t", JS_SPELLING);
  const cols = Array.from({ length: COLUMN_BLOCK }, (_, j) => j);
  const bodies = cols.map((j) => shiftGid(k.body, j));
  lines.push(`for (let gid = 0; gid < ${k.n}; gid += ${COLUMN_BLOCK}) {`);
  for (const body of bodies) em.emit(body, lines, dependsOn(body, "ridx"));
  lines.push(...cols.map((j) => `let acc${j} = ${reduceInit(k.reduce!)};`));
  lines.push(`for (let ridx = 0; ridx < ${size}; ridx++) {`);
  const xs = bodies.map((body) => em.emit(body, lines));
  lines.push(...xs.map((x, j) => (op === "sum" ? `acc${j} += ${x};` : `if (${x} > acc${j} || ${x} !== ${x}) acc${j} = ${x};`)));
  lines.push(`}`);
  for (const j of cols) {
    lines.push(`{`, `let acc = acc${j};`);
    const value = reducedValue(k, k.epilogue && shiftGid(k.epilogue, j), lines);
    lines.push(`b0[gid + ${j}] = ${spellStore(k.out, value)};`, `}`);
  }
  lines.push(`}`, `};`);
  return lines.join("\n");
}

/** The smallest D > 1 dividing n for which the body reads gid / D: the length of the rows of a split loop. */
function rowLength(k: KernelSpec): number | undefined {
  let best: number | undefined;
  for (const e of toposort(k.body)) {
    const d = gidDivisor(e);
    if (d !== undefined && d > 1 && k.n % d === 0 && k.n > d && (best === undefined || d < best)) best = d;
  }
  return best;
}

const gidDivisor = (e: Expr): number | undefined =>
  e.k === "alu" && e.op === "div" && e.src[0]!.k === "var" && e.src[0]!.name === "gid" && e.src[1]!.k === "const" && e.src[0]!.dtype === "i32"
    ? e.src[1]!.v
    : undefined;

/** Which nodes change within a row of `row` elements: those reading gid other than as gid / D with row | D. */
function readsGidWithin(root: Expr, row: number): (e: Expr) => boolean {
  return dependsOn(root, "gid", (e) => {
    const d = gidDivisor(e);
    return d !== undefined && d % row === 0;
  });
}

/**
 * A routine's epilogue as JS statements over `acc` (the accumulated value) and `gid` (the output's flat
 * index), with its inputs in slots firstSlot, firstSlot + 1, ...: `lines` declare temporaries and `value`
 * names out[gid]'s value. Spelled by the same Emitter as renderJs, so it means what a generated kernel's
 * epilogue means; like renderJs's source it calls the host helpers of kernel_helpers.ts,
 * which the caller binds.
 */
export function renderEpilogueLines(epi: Epilogue, firstSlot: number): { lines: string[]; value: string } {
  const last = firstSlot + epi.inputs.length - 1;
  for (const e of toposort(epi.expr)) {
    if (e.k === "load" && (e.slot < firstSlot || e.slot > last)) {
      throw new Error(`render_js: epilogue loads slot ${e.slot}, but its inputs are slots ${firstSlot}..${last}`);
    }
    if (e.k === "var" && e.name === "ridx") throw new Error("render_js: an epilogue cannot read ridx");
  }
  const lines: string[] = [];
  const value = new Emitter("e", JS_SPELLING).emit(epi.expr, lines);
  return { lines, value };
}
