// wgsl_ops.ts spells values in WGSL: each dtype's compute type, constants, casts and every ALU op
// (one table keyed by the op table, meaning what render_js.ts's JS_ALU means), plus the small helper
// functions those spellings call. It does not lay out buffers or kernels (render_wgsl.ts does).

import type { DType } from "../../core/dtype.js";
import type { Expr } from "../../core/ir.js";
import type { AluOp } from "../../core/ops.js";
import { assertNever } from "../../core/ops.js";

/** The WGSL type a dtype computes in: f16/bf16 widen to f32, u8 to u32; f64 has none. */
export type WgslType = "f32" | "i32" | "u32" | "bool";

export const f64Error = (where?: string): Error =>
  new Error(`webgpu: f64 is not supported${where ? ` in ${where}` : ""} (WGSL has no f64); cast to f32 first`);

export function computeType(d: DType): WgslType {
  switch (d) {
    case "f32": case "f16": case "bf16": return "f32";
    case "i32": return "i32";
    case "u32": case "u8": return "u32";
    case "bool": return "bool";
    case "f64": throw f64Error();
    default: return assertNever(d, "dtype");
  }
}

const isF = (d: DType) => computeType(d) === "f32";
/** u8 computes in u32 and wraps back to 0..255 after ops that can leave that range (as JS_ALU does). */
const wrap8 = (s: string, d: DType) => (d === "u8" ? `((${s}) & 0xffu)` : `(${s})`);

function undefinedOn(op: string, d: DType): never {
  throw new Error(`webgpu: ${op} is not defined on ${d}`);
}

export function spellConst(v: number, d: DType): string {
  switch (computeType(d)) {
    case "bool": return v ? "true" : "false";
    case "u32": return `${v >>> 0}u`;
    // NOTE: -2^31 has no i32 literal (the literal 2147483648i overflows before it is negated).
    case "i32": return v === -2147483648 ? "(-2147483647i - 1i)" : v < 0 ? `(${v}i)` : `${v}i`;
    case "f32": {
      // NOTE: WGSL has no Inf/NaN literals and rejects them in constant expressions; a call is not one.
      if (Number.isNaN(v)) return "k_nan()";
      if (v === Infinity) return "k_f32bits(0x7f800000u)";
      if (v === -Infinity) return "k_f32bits(0xff800000u)";
      if (Object.is(v, -0)) return "(-0.0f)";
      // NOTE: subnormals through their bits too: a literal may be flushed to zero at shader creation.
      if (v !== 0 && Math.abs(v) < 2 ** -126) return `k_f32bits(${f32Bits(v)}u)`;
      const s = String(v);
      const lit = /[.e]/.test(s) ? `${s}f` : `${s}.0f`;
      return v < 0 ? `(${lit})` : lit;
    }
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function f32Bits(v: number): number {
  f32[0] = v;
  return u32[0]!;
}

/** Converts a value of dtype `from` (in its compute type) to dtype `to`, as render_js's spellCast does. */
export function spellCast(a: string, from: DType, to: DType): string {
  if (from === to) return a;
  const ft = computeType(from);
  if (ft === "bool") return computeType(to) === "bool" ? a : `select(${spellConst(0, to)}, ${spellConst(1, to)}, ${a})`;
  switch (to) {
    // NOTE: floats test their bits: NaN is true (drivers may compile `!=` as an ordered compare, as
    // SwiftShader does) and so are subnormals (which GPUs flush to zero in arithmetic and compares).
    case "bool": return ft === "f32" ? `((bitcast<u32>(${a}) & 0x7fffffffu) != 0u)` : `(${a} != ${spellConst(0, from)})`;
    case "f32": return ft === "f32" ? a : `f32(${a})`;
    case "f16": return `k_round_f16(${ft === "f32" ? a : `f32(${a})`})`;
    case "bf16": return `k_round_bf16(${ft === "f32" ? a : `f32(${a})`})`;
    case "i32": return ft === "f32" ? `k_f2i(${a})` : `bitcast<i32>(${a})`;
    case "u32": return ft === "f32" ? `bitcast<u32>(k_f2i(${a}))` : ft === "i32" ? `bitcast<u32>(${a})` : a;
    case "u8": return ft === "f32" ? `(bitcast<u32>(k_f2i(${a})) & 0xffu)` : ft === "i32" ? `(bitcast<u32>(${a}) & 0xffu)` : `(${a} & 0xffu)`;
    case "f64": throw f64Error();
    default: return assertNever(to, "dtype");
  }
}

type Spell = (a: string[], d: DType, src: readonly Expr[]) => string;
const floatOnly = (op: AluOp, f: (a: string) => string): Spell => ([a], d) => (isF(d) ? f(a!) : undefinedOn(op, d));

/**
 * The WGSL spelling of every ALU op; `d` is the first operand's dtype. Same meaning as JS_ALU: integer
 * ops wrap, x / 0 = x and x % 0 = 0 for ints (WGSL defines both so), shr is arithmetic on i32 and
 * logical on u32, bool ops are logical. Float math goes through helpers wherever WGSL leaves the
 * answer undefined (NaN or infinite operands, negative bases, ...), so that it keeps JS's answer there.
 */
export const WGSL_ALU: Readonly<Record<AluOp, Spell>> = {
  neg: ([a], d) => (d === "bool" ? a! : d === "u32" || d === "u8" ? wrap8(`0u - ${a}`, d) : `(-${a})`),
  recip: floatOnly("recip", (a) => `(1.0f / ${a})`),
  sqrt: floatOnly("sqrt", (a) => `k_sqrt(${a})`),
  exp: floatOnly("exp", (a) => `k_exp(${a})`),
  log: floatOnly("log", (a) => `k_log(${a})`),
  sin: floatOnly("sin", (a) => `k_sin(${a})`),
  cos: floatOnly("cos", (a) => `k_cos(${a})`),
  tanh: floatOnly("tanh", (a) => `k_tanh(${a})`),
  abs: ([a], d) => (isF(d) || d === "i32" ? `abs(${a})` : a!),
  floor: ([a], d) => (isF(d) ? `floor(${a})` : a!),
  not: ([a], d) => (d === "bool" ? `(!${a})` : isF(d) ? undefinedOn("not", d) : wrap8(`~${a}`, d)),
  add: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : wrap8(`${a} + ${b}`, d)),
  // NOTE: JS computes true - false = 1 and false - true = -1, both stored as true: that is xor.
  sub: ([a, b], d) => (d === "bool" ? `(${a} != ${b})` : wrap8(`${a} - ${b}`, d)),
  mul: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : wrap8(`${a} * ${b}`, d)),
  div: ([a, b], d) => (d === "bool" ? undefinedOn("div", d) : `(${a} / ${b})`),
  max: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : isF(d) ? `k_fmax(${a}, ${b})` : `max(${a}, ${b})`),
  min: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : isF(d) ? `k_fmin(${a}, ${b})` : `min(${a}, ${b})`),
  pow: ([a, b], d) => (isF(d) ? `k_pow(${a}, ${b})` : undefinedOn("pow", d)),
  mod: ([a, b], d) => (d === "bool" ? undefinedOn("mod", d) : isF(d) ? `k_fmod(${a}, ${b})` : `(${a} % ${b})`),
  cmplt: ([a, b], d) => (d === "bool" ? `(!${a} && ${b})` : `(${a} < ${b})`),
  cmpeq: ([a, b]) => `(${a} == ${b})`,
  // NOTE: NaN != NaN must be true; see spellCast's note on ordered compares.
  cmpne: ([a, b], d) => (isF(d) ? `!(${a} == ${b})` : `(${a} != ${b})`),
  and: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : isF(d) ? undefinedOn("and", d) : `(${a} & ${b})`),
  or: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : isF(d) ? undefinedOn("or", d) : `(${a} | ${b})`),
  xor: ([a, b], d) => (d === "bool" ? `(${a} != ${b})` : isF(d) ? undefinedOn("xor", d) : `(${a} ^ ${b})`),
  // NOTE: WGSL takes the shift amount modulo 32 at run time, as JS does.
  shl: ([a, b], d, src) => (d === "bool" || isF(d) ? undefinedOn("shl", d) : wrap8(`${a} << ${shiftAmount(b!, src[1]!.dtype)}`, d)),
  shr: ([a, b], d, src) => (d === "bool" || isF(d) ? undefinedOn("shr", d) : `(${a} >> ${shiftAmount(b!, src[1]!.dtype)})`),
  where: ([c, a, b], _d, src) => `select(${b}, ${a}, ${spellCast(c!, src[0]!.dtype, "bool")})`,
};

const shiftAmount = (b: string, d: DType) => (computeType(d) === "u32" ? b : `bitcast<u32>(${spellCast(b, d, "i32")})`);

/**
 * Helper functions the spellings above call, each with the helpers it calls. Prefixed `k_` so they do not
 * clash with a routine's own names; `wgslHelpers` includes only those a source uses.
 */
const HELPERS: ReadonlyArray<readonly [name: string, code: string]> = [
  ["k_f32bits", "fn k_f32bits(b: u32) -> f32 { return bitcast<f32>(b); }"],
  ["k_isnan", "fn k_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }"],
  ["k_finite", "fn k_finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }"],
  ["k_nan", "fn k_nan() -> f32 { return k_f32bits(0x7fc00000u); }"],
  // NOTE: WGSL leaves these undefined on NaN, on infinities (sin, cos), below zero (sqrt, log) and at zero (log);
  // SwiftShader's exp(NaN) is Inf and its log(0) is -88.
  ["k_exp", "fn k_exp(x: f32) -> f32 { return select(exp(x), x, k_isnan(x)); }"],
  ["k_log", `fn k_log(x: f32) -> f32 {
  if (k_isnan(x) || x < 0.0f) { return k_nan(); }
  if (x == 0.0f) { return k_f32bits(0xff800000u); }
  return log(x);
}`],
  ["k_sqrt", "fn k_sqrt(x: f32) -> f32 { return select(sqrt(x), k_nan(), k_isnan(x) || x < 0.0f); }"],
  ["k_sin", "fn k_sin(x: f32) -> f32 { return select(k_nan(), sin(x), k_finite(x)); }"],
  ["k_cos", "fn k_cos(x: f32) -> f32 { return select(k_nan(), cos(x), k_finite(x)); }"],
  ["k_fmax", `fn k_fmax(a: f32, b: f32) -> f32 {
  if (k_isnan(a)) { return a; }
  if (k_isnan(b)) { return b; }
  return max(a, b);
}`],
  ["k_fmin", `fn k_fmin(a: f32, b: f32) -> f32 {
  if (k_isnan(a)) { return a; }
  if (k_isnan(b)) { return b; }
  return min(a, b);
}`],
  // WGSL's float % is a - b * trunc(a / b): NaN for an infinite b, where JS keeps a.
  ["k_fmod", `fn k_fmod(a: f32, b: f32) -> f32 {
  if (k_finite(a) && !k_finite(b) && !k_isnan(b)) { return a; }
  return a % b;
}`],
  // NOTE: tanh saturates to +-1 in f32 beyond |x| = 15; clamping avoids inf/inf = NaN in drivers that use exp.
  ["k_tanh", `fn k_tanh(x: f32) -> f32 {
  if (k_isnan(x)) { return x; }
  return tanh(clamp(x, -15.0f, 15.0f));
}`],
  // WGSL's pow is exp2(b * log2(a)): undefined for a <= 0. Math.pow's answers there:
  ["k_pow", `fn k_pow(a: f32, b: f32) -> f32 {
  if (b == 0.0f) { return 1.0f; }
  if (k_isnan(a) || k_isnan(b)) { return k_nan(); }
  if (a == 0.0f) { return select(k_f32bits(0x7f800000u), 0.0f, b > 0.0f); }
  let m = pow(abs(a), b);
  if (a > 0.0f) { return m; }
  if (floor(b) != b) { return k_nan(); }
  let odd = abs(b) < 16777216.0f && (i32(abs(b)) & 1) == 1;
  return select(m, -m, odd);
}`],
  // JS's ToInt32: truncate, then wrap modulo 2^32 (NaN and Inf give 0); WGSL's i32() saturates instead.
  ["k_f2i", `fn k_f2i(x: f32) -> i32 {
  if (abs(x) < 2147483648.0f) { return i32(x); }
  let b = bitcast<u32>(x);
  let e = i32((b >> 23u) & 0xffu) - 150;
  if (e >= 32) { return 0; }
  let lo = ((b & 0x7fffffu) | 0x800000u) << u32(e);
  return select(bitcast<i32>(lo), -bitcast<i32>(lo), (b >> 31u) == 1u);
}`],
  // f32 -> f16 bits, round to nearest even: dtype.ts's f32ToF16Bits (pack2x16float is undefined out of range).
  ["k_f2h", `fn k_f2h(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let ex = i32((b >> 23u) & 0xffu);
  var mant = b & 0x7fffffu;
  if (ex == 255) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  let e = ex - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rest = mant & ((1u << shift) - 1u);
    var m = mant >> shift;
    if (rest > half || (rest == half && (m & 1u) == 1u)) { m = m + 1u; }
    return sign | m;
  }
  let rest = mant & 0x1fffu;
  var o = sign | (u32(e) << 10u) | (mant >> 13u);
  if (rest > 0x1000u || (rest == 0x1000u && (o & 1u) == 1u)) { o = o + 1u; }
  return o;
}`],
  // f32 -> bf16 bits, round to nearest even, NaN stays NaN: dtype.ts's f32ToBf16Bits.
  ["k_f2bh", `fn k_f2bh(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) { return (b >> 16u) | 0x40u; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}`],
  ["k_round_f16", "fn k_round_f16(x: f32) -> f32 { return unpack2x16float(k_f2h(x)).x; }"],
  ["k_round_bf16", "fn k_round_bf16(x: f32) -> f32 { return bitcast<f32>(k_f2bh(x) << 16u); }"],
];

/** Definitions of the helpers `source` calls, directly or through other helpers. */
export function wgslHelpers(source: string): string {
  const used = new Set<string>();
  let text = source;
  // Each pass may add helpers whose bodies call further helpers (WGSL lets a function precede its callees).
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, code] of HELPERS) {
      if (!used.has(name) && new RegExp(`\\b${name}\\(`).test(text)) {
        used.add(name);
        text += "\n" + code;
        changed = true;
      }
    }
  }
  return HELPERS.filter(([name]) => used.has(name)).map(([, code]) => code).join("\n");
}
