// exp_f32.ts emits a vectorised f32 exp (four lanes at once) into a WebAssembly SIMD function body: wasm has
// no exp instruction, and the attention kernel's softmax needs one per score without leaving wasm.
// Method (Cephes expf): x = n ln2 + r with n = nearest(x log2 e) (by the float shifter trick) and
// |r| <= ln2/2 (ln2 split in two parts, Cody-Waite, so n ln2 is subtracted without rounding error), e^r by
// a degree-7 polynomial, then the
// scale 2^n applied as two powers of two (2^(n>>1) then 2^(n - n>>1)) so that results near the top of the
// range and gradual underflow (subnormals) come out with one rounding.
// Special values: NaN -> NaN; x clamped to [-104, 89] first, so +Inf and x > 88.72 -> +Inf (overflow),
// -Inf and x < -103.97 -> +0, the subnormal range is rounded once.
// Error bound (measured against Math.fround(Math.exp(x)), the correctly rounded f32, over 2^22 evenly
// spaced x in [-104, 89]; the test checks 2^20 of them and the special values): at most 1 ulp for normal
// results (9% of them off by 1), at most 1 unit of 2^-149 for subnormal ones. The scale by two powers of
// two is exact until the final rounding, so the polynomial and Cody-Waite reduction are the whole error.

import type { FuncBody } from "./encoder.js";
import { V128 } from "./encoder.js";

const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;

/** Pushes an f32x4 constant with x in every lane. */
export function f32x4Const(f: FuncBody, x: number): FuncBody {
  const b = f32Bits(x);
  return f.i32x4Const([b, b, b, b]);
}

// Cephes expf constants: ln2 = C1 + C2 with C1 exact in 9 bits (n C1 is exact for |n| < 2^15), and the
// polynomial e^r ~ 1 + r + r^2 (P0 + P1 r + ... + P5 r^5) on [-ln2/2, ln2/2].
const LOG2E = 1.44269504088896341;
const C1 = 0.693359375;
const C2 = -2.12194440e-4;
const P = [5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4];
const LO = -104;
const HI = 89;
const SHIFT = 12582912; // 1.5 * 2^23

/**
 * Emits exp over f32x4 lanes into one function body: init() once at the top of the body (the constants),
 * then emit() wherever an exp is needed; its locals are allocated once per body.
 * NOTE: constants live in locals set once rather than as v128.const at each use: 0.115-0.12 ms against
 * 0.12-0.135 ms per 26,624 f32x4 (about one training attention launch's exps; min of 30 runs, 2026-12-07,
 * AMD EPYC 2 vCPU under load, Node 20).
 */
export class ExpF32 {
  private readonly x: number;
  private readonly n: number;
  private readonly r: number;
  private readonly p: number;
  private readonly ni: number;
  private readonly bias: number;
  private readonly k: Map<number, number> = new Map();

  constructor(private readonly f: FuncBody) {
    [this.x, this.n, this.r, this.p, this.ni] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
    for (const c of [LO, HI, LOG2E, SHIFT, C1, C2, ...P, 1]) this.k.set(c, f.local(V128));
    this.bias = f.local(V128);
  }

  /** Sets the constants' locals; emit it once before any emit(). */
  init(): void {
    for (const [c, at] of this.k) f32x4Const(this.f, c).set(at);
    this.f.i32x4Const([127, 127, 127, 127]).set(this.bias);
  }

  private c(x: number): FuncBody {
    return this.f.get(this.k.get(x)!);
  }

  /** Pops an f32x4 and pushes exp of each lane. */
  emit(): void {
    const { f, x, n, r, p, ni } = this;
    // x = clamp(x) with pmax/pmin, x first: a NaN x compares false and passes through.
    this.c(LO).f32x4Pmax();
    this.c(HI).f32x4Pmin().set(x);
    // n = nearest(x log2 e) by the 1.5 * 2^23 shifter: t = x log2 e + SHIFT rounds to an integer (ties to even),
    // t - SHIFT is n as a float and bits(t) - bits(SHIFT) is n as an i32 (|n| <= 150 < 2^22).
    f.get(x);
    this.c(LOG2E).f32x4Mul();
    this.c(SHIFT).f32x4Add().tee(n);
    this.c(SHIFT).i32x4Sub().set(ni);
    f.get(n);
    this.c(SHIFT).f32x4Sub().set(n);
    // r = (x - n C1) - n C2.
    f.get(x).get(n);
    this.c(C1).f32x4Mul().f32x4Sub();
    f.get(n);
    this.c(C2).f32x4Mul().f32x4Sub().set(r);
    // p = ((((P5 r + P4) r + P3) r + P2) r + P1) r + P0; e^r = p r^2 + r + 1 (Horner, fixed order: deterministic).
    this.c(P[5]!);
    for (let i = 4; i >= 0; i--) {
      f.get(r).f32x4Mul();
      this.c(P[i]!).f32x4Add();
    }
    f.get(r).f32x4Mul().get(r).f32x4Mul().get(r).f32x4Add();
    this.c(1).f32x4Add().set(p);
    // 2^n as two normal powers of two: n in [-150, 128] after the clamp, so n>>1 and n - n>>1 lie in [-75, 64].
    f.get(p);
    f.get(ni).i32(1).i32x4ShrS().set(n); // n reused as the i32 half n1
    f.get(n).get(this.bias).i32x4Add().i32(23).i32x4Shl().f32x4Mul();
    f.get(ni).get(n).i32x4Sub().get(this.bias).i32x4Add().i32(23).i32x4Shl().f32x4Mul();
  }
}
