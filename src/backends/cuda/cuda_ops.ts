// cuda_ops.ts spells values in CUDA C: each dtype's storage and compute type, constants, casts and every
// ALU op (one table keyed by the op table, meaning what render_js.ts's JS_ALU means), plus the prelude of
// small helper functions those spellings call. It does not lay out kernels (render_cuda.ts does).
// NOTE: every spelling is plain C that also compiles as host C++ (the prelude's KILN_HOST_SHIM branch),
// so the test that runs rendered kernels on the cpu checks these very strings, not a copy of them.
// C leaves signed overflow, x / 0 and out-of-range float-to-int undefined where JS defines them: i32
// arithmetic goes through unsigned (which wraps), and division and float-to-int through helpers.

import type { DType } from "../../core/dtype.js";
import type { Expr } from "../../core/ir.js";
import type { AluOp } from "../../core/ops.js";
import { assertNever } from "../../core/ops.js";

/** The C type a dtype computes in: f16/bf16 widen to float, u8 to unsigned. */
export type CudaType = "float" | "double" | "int" | "unsigned" | "bool";

export function computeType(d: DType): CudaType {
  switch (d) {
    case "f32": case "f16": case "bf16": return "float";
    case "f64": return "double";
    case "i32": return "int";
    case "u32": case "u8": return "unsigned";
    case "bool": return "bool";
    default: return assertNever(d, "dtype");
  }
}

/** The C type a buffer of this dtype holds: the dtype's dense little-endian bytes (f16/bf16 as raw bits). */
export function storageType(d: DType): string {
  switch (d) {
    case "f32": return "float";
    case "f64": return "double";
    case "f16": case "bf16": return "unsigned short";
    case "i32": return "int";
    case "u32": return "unsigned";
    case "u8": case "bool": return "unsigned char";
    default: return assertNever(d, "dtype");
  }
}

const isF = (d: DType) => computeType(d) === "float" || d === "f64";
/** The C math function for float or double (sqrtf / sqrt): no overload resolution to trust on either side. */
const fn = (name: string, d: DType) => (d === "f64" ? name : `${name}f`);
/** u8 computes in unsigned and wraps back to 0..255 after ops that can leave that range (as JS_ALU does). */
const wrap8 = (s: string, d: DType) => (d === "u8" ? `((${s}) & 0xffu)` : `(${s})`);
/** i32 arithmetic in unsigned, where overflow wraps as JS's `| 0` does (signed overflow is undefined in C). */
const wrapI = (a: string, op: string, b: string) => `((int)((unsigned)(${a}) ${op} (unsigned)(${b})))`;

function undefinedOn(op: string, d: DType): never {
  throw new Error(`cuda: ${op} is not defined on ${d}`);
}

export function spellConst(v: number, d: DType): string {
  const t = computeType(d);
  switch (t) {
    case "bool": return v ? "true" : "false";
    case "unsigned": return `${v >>> 0}u`;
    // NOTE: -2^31 has no int literal (2147483648 is a long before it is negated).
    case "int": return v === -2147483648 ? "(-2147483647 - 1)" : v < 0 ? `(${v})` : String(v);
    case "float": case "double": {
      // NOTE: NVRTC has no math.h, so no NAN / INFINITY macros: non-finite values are spelled by their bits.
      const dbl = t === "double";
      if (Number.isNaN(v)) return dbl ? "k_bitsd(0x7ff8000000000000ull)" : "k_bitsf(0x7fc00000u)";
      if (v === Infinity) return dbl ? "k_bitsd(0x7ff0000000000000ull)" : "k_bitsf(0x7f800000u)";
      if (v === -Infinity) return dbl ? "k_bitsd(0xfff0000000000000ull)" : "k_bitsf(0xff800000u)";
      if (Object.is(v, -0)) return dbl ? "(-0.0)" : "(-0.0f)";
      // String(v) is the shortest decimal that reads back as this double; v is already rounded to the
      // dtype (ir.ts c()), so read as a float it gives the same float.
      const s = String(v);
      const lit = (/[.e]/.test(s) ? s : `${s}.0`) + (dbl ? "" : "f");
      return v < 0 ? `(${lit})` : lit;
    }
    default: return assertNever(t, "compute type");
  }
}

/** Converts a value of dtype `from` (in its compute type) to dtype `to`, as render_js's spellCast does. */
export function spellCast(a: string, from: DType, to: DType): string {
  if (from === to) return a;
  const ft = computeType(from);
  if (ft === "bool") return computeType(to) === "bool" ? a : `(${a} ? ${spellConst(1, to)} : ${spellConst(0, to)})`;
  const asFloat = ft === "float" ? a : `((float)(${a}))`;
  const asInt = isF(from) ? `k_f2i((double)(${a}))` : `((int)(${a}))`;
  switch (to) {
    // NOTE: NaN != 0 is true in C, as in JS; subnormals too (no flush-to-zero: kernels build without fast math).
    case "bool": return `(${a} != ${spellConst(0, from)})`;
    case "f32": return asFloat;
    case "f64": return `((double)(${a}))`;
    case "f16": return `k_round_f16(${asFloat})`;
    case "bf16": return `k_round_bf16(${asFloat})`;
    case "i32": return asInt;
    case "u32": return isF(from) ? `((unsigned)${asInt})` : `((unsigned)(${a}))`;
    case "u8": return isF(from) ? `((unsigned)${asInt} & 0xffu)` : `((unsigned)(${a}) & 0xffu)`;
    default: return assertNever(to, "dtype");
  }
}

type Spell = (a: string[], d: DType, src: readonly Expr[]) => string;
const floatOnly = (op: AluOp, f: (a: string, d: DType) => string): Spell => ([a], d) => (isF(d) ? f(a!, d) : undefinedOn(op, d));
/** JS takes a shift amount modulo 32 (ToUint32(b) & 31); C leaves shifts by 32 or more undefined. */
const shift = (b: string) => `((unsigned)(${b}) & 31u)`;

/**
 * The CUDA C spelling of every ALU op; `d` is the first operand's dtype. Same meaning as JS_ALU: integer
 * ops wrap, x / 0 = x and x % 0 = 0 for ints, shr is arithmetic on i32 and logical on u32, bool ops
 * are logical, float max/min keep NaN, pow keeps Math.pow's answers where C's pow differs.
 */
export const CUDA_ALU: Readonly<Record<AluOp, Spell>> = {
  neg: ([a], d) => (d === "bool" ? a! : isF(d) ? `(-${a})` : d === "i32" ? `((int)(0u - (unsigned)(${a})))` : wrap8(`0u - ${a}`, d)),
  recip: floatOnly("recip", (a, d) => `(${spellConst(1, d)} / ${a})`),
  sqrt: floatOnly("sqrt", (a, d) => `${fn("sqrt", d)}(${a})`),
  exp: floatOnly("exp", (a, d) => `${fn("exp", d)}(${a})`),
  log: floatOnly("log", (a, d) => `${fn("log", d)}(${a})`),
  sin: floatOnly("sin", (a, d) => `${fn("sin", d)}(${a})`),
  cos: floatOnly("cos", (a, d) => `${fn("cos", d)}(${a})`),
  tanh: floatOnly("tanh", (a, d) => `${fn("tanh", d)}(${a})`),
  abs: ([a], d) => (isF(d) ? `${fn("fabs", d)}(${a})` : d === "i32" ? `((int)((${a}) < 0 ? 0u - (unsigned)(${a}) : (unsigned)(${a})))` : a!),
  floor: ([a], d) => (isF(d) ? `${fn("floor", d)}(${a})` : a!),
  not: ([a], d) => (d === "bool" ? `(!${a})` : isF(d) ? undefinedOn("not", d) : wrap8(`~${a}`, d)),
  add: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : d === "i32" ? wrapI(a!, "+", b!) : wrap8(`${a} + ${b}`, d)),
  // NOTE: JS computes true - false = 1 and false - true = -1, both stored as true: that is xor.
  sub: ([a, b], d) => (d === "bool" ? `(${a} != ${b})` : d === "i32" ? wrapI(a!, "-", b!) : wrap8(`${a} - ${b}`, d)),
  mul: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : d === "i32" ? wrapI(a!, "*", b!) : wrap8(`${a} * ${b}`, d)),
  div: ([a, b], d) => (d === "bool" ? undefinedOn("div", d) : isF(d) ? `(${a} / ${b})` : d === "i32" ? `k_idiv(${a}, ${b})` : `k_udiv(${a}, ${b})`),
  max: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : isF(d) ? `k_fmax(${a}, ${b})` : `(${a} > ${b} ? ${a} : ${b})`),
  min: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : isF(d) ? `k_fmin(${a}, ${b})` : `(${a} < ${b} ? ${a} : ${b})`),
  pow: ([a, b], d) => (isF(d) ? `k_pow(${a}, ${b})` : undefinedOn("pow", d)),
  // NOTE: C's fmod is JS's float % (dividend's sign, x % inf = x); ints go through helpers for x % 0.
  mod: ([a, b], d) => (d === "bool" ? undefinedOn("mod", d) : isF(d) ? `${fn("fmod", d)}(${a}, ${b})` : d === "i32" ? `k_imod(${a}, ${b})` : `k_umod(${a}, ${b})`),
  cmplt: ([a, b], d) => (d === "bool" ? `(!${a} && ${b})` : `(${a} < ${b})`),
  cmpeq: ([a, b]) => `(${a} == ${b})`,
  cmpne: ([a, b]) => `(${a} != ${b})`,
  and: ([a, b], d) => (d === "bool" ? `(${a} && ${b})` : isF(d) ? undefinedOn("and", d) : `(${a} & ${b})`),
  or: ([a, b], d) => (d === "bool" ? `(${a} || ${b})` : isF(d) ? undefinedOn("or", d) : `(${a} | ${b})`),
  xor: ([a, b], d) => (d === "bool" ? `(${a} != ${b})` : isF(d) ? undefinedOn("xor", d) : `(${a} ^ ${b})`),
  shl: ([a, b], d) =>
    d === "bool" || isF(d) ? undefinedOn("shl", d) : d === "i32" ? `((int)((unsigned)(${a}) << ${shift(b!)}))` : wrap8(`${a} << ${shift(b!)}`, d),
  // NOTE: >> of a negative int is arithmetic in nvcc and g++ (and defined so since C++20).
  shr: ([a, b], d) => (d === "bool" || isF(d) ? undefinedOn("shr", d) : `(${a} >> ${shift(b!)})`),
  where: ([c, a, b], _d, src) => `(${spellCast(c!, src[0]!.dtype, "bool")} ? ${a} : ${b})`,
};

/**
 * The helpers the spellings call, for nvcc/NVRTC and, under KILN_HOST_SHIM, for a host C++ compiler.
 * One copy per translation unit; all `static`, so unused ones cost nothing.
 */
export const CUDA_PRELUDE = String.raw`// kiln CUDA prelude: helpers that give C the meaning JS gives each op (cuda_ops.ts).
#ifndef KILN_CUDA_PRELUDE
#define KILN_CUDA_PRELUDE
#ifdef KILN_HOST_SHIM
#define KF static inline
static inline unsigned k_fbits(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static inline float k_bitsf(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
static inline double k_bitsd(unsigned long long u) { double x; memcpy(&x, &u, 8); return x; }
#else
// NOTE: 177 is "declared but never referenced": each kernel uses a few of these helpers.
#pragma nv_diag_suppress 177
#define KF static __device__ __forceinline__
KF unsigned k_fbits(float x) { return __float_as_uint(x); }
KF float k_bitsf(unsigned u) { return __uint_as_float(u); }
KF double k_bitsd(unsigned long long u) { return __longlong_as_double((long long)u); }
#endif
KF bool k_isnanf(float x) { return x != x; }
KF float k_fmax(float a, float b) { return k_isnanf(a) ? a : k_isnanf(b) ? b : (a > b ? a : b); }
KF float k_fmin(float a, float b) { return k_isnanf(a) ? a : k_isnanf(b) ? b : (a < b ? a : b); }
KF double k_fmax(double a, double b) { return a != a ? a : b != b ? b : (a > b ? a : b); }
KF double k_fmin(double a, double b) { return a != a ? a : b != b ? b : (a < b ? a : b); }
// Math.pow differs from C's pow on a NaN exponent (NaN, where pow(1, NaN) = 1) and on |a| = 1 with an
// infinite exponent (NaN, where C gives 1).
KF float k_pow(float a, float b) {
  if (b != b) return k_bitsf(0x7fc00000u);
  if ((a == 1.0f || a == -1.0f) && (b - b) != 0.0f) return k_bitsf(0x7fc00000u);
  return powf(a, b);
}
KF double k_pow(double a, double b) {
  if (b != b) return k_bitsd(0x7ff8000000000000ull);
  if ((a == 1.0 || a == -1.0) && (b - b) != 0.0) return k_bitsd(0x7ff8000000000000ull);
  return pow(a, b);
}
// JS's ToInt32 of a truncated float: NaN and +-Inf give 0, the rest wraps modulo 2^32 (C's cast is undefined there).
KF int k_f2i(double x) {
  if (x != x || x - x != 0.0) return 0;
  if (x > -2147483649.0 && x < 2147483648.0) return (int)x;
  double t = fmod(trunc(x), 4294967296.0);
  if (t < 0.0) t += 4294967296.0;
  return (int)(unsigned)t;
}
// Integer division truncates; x / 0 = x and x % 0 = 0 (as in WGSL and kiln's JS); INT_MIN / -1 wraps.
KF int k_idiv(int a, int b) { return b == 0 ? a : b == -1 ? (int)(0u - (unsigned)a) : a / b; }
KF int k_imod(int a, int b) { return (b == 0 || b == -1) ? 0 : a % b; }
KF unsigned k_udiv(unsigned a, unsigned b) { return b == 0u ? a : a / b; }
KF unsigned k_umod(unsigned a, unsigned b) { return b == 0u ? 0u : a % b; }
// f16 bits <-> float, round to nearest even: dtype.ts's f32ToF16Bits and f16BitsToF32.
KF float k_h2f(unsigned short h) {
  unsigned sign = (unsigned)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0u) { float v = (float)m * 5.9604644775390625e-8f; return sign ? -v : v; }
  if (e == 31u) return k_bitsf(sign | 0x7f800000u | (m << 13));
  return k_bitsf(sign | ((e + 112u) << 23) | (m << 13));
}
KF unsigned short k_f2h(float x) {
  unsigned b = k_fbits(x);
  unsigned sign = (b >> 16) & 0x8000u;
  int ex = (int)((b >> 23) & 0xffu);
  unsigned mant = b & 0x7fffffu;
  if (ex == 255) return (unsigned short)(sign | 0x7c00u | (mant != 0u ? 0x200u : 0u));
  int e = ex - 112;
  if (e >= 31) return (unsigned short)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (unsigned short)sign;
    mant |= 0x800000u;
    unsigned sh = (unsigned)(14 - e), half = 1u << (sh - 1u), rest = mant & ((1u << sh) - 1u), m = mant >> sh;
    if (rest > half || (rest == half && (m & 1u))) m++;
    return (unsigned short)(sign | m);
  }
  unsigned rest = mant & 0x1fffu, o = sign | ((unsigned)e << 10) | (mant >> 13);
  if (rest > 0x1000u || (rest == 0x1000u && (o & 1u))) o++;
  return (unsigned short)o;
}
KF float k_bh2f(unsigned short h) { return k_bitsf((unsigned)h << 16); }
KF unsigned short k_f2bh(float x) {
  unsigned b = k_fbits(x);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) return (unsigned short)((b >> 16) | 0x40u);
  return (unsigned short)(((b + 0x7fffu + ((b >> 16) & 1u)) >> 16) & 0xffffu);
}
KF float k_round_f16(float x) { return k_h2f(k_f2h(x)); }
KF float k_round_bf16(float x) { return k_bh2f(k_f2bh(x)); }
#endif
`;
