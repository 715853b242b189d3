// simplify.ts: value-range analysis and algebraic rewrites for a kernel's i32 index arithmetic.
// Lowering composes movement ops by substitution, so a permute of a reshape decomposes gid into dims,
// recomposes a flat index and decomposes it again. Knowing gid in [0, n) and ridx in [0, size) is
// enough to collapse most of that: (a*c + b) / c -> a when 0 <= b < c, x % c -> x when 0 <= x < c,
// (x / a) / b -> x / (a*b), (x % (a*b)) / a -> (x / a) % b, (x / c)*c + x % c -> x, and comparisons
// the ranges decide.
// It owns the ranges and the rules; not the builders' local folding (ir.ts) nor any spelling (renderers).
// NOTE: i32 add/sub/mul wrap modulo 2^32 on every backend, so sums are regrouped freely (a ring).
// Division and remainder are rewritten only where the sum's exact range fits in i32 and is >= 0:
// there it equals its value without wrapping, and truncating division agrees with flooring division.

import type { Expr, KernelSpec } from "./ir.js";
import { alu, c, cast, exprKey, load } from "./ir.js";

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/** Inclusive bounds of an integer (or bool) expression's value. */
interface Range { readonly lo: number; readonly hi: number }
const FULL: Range = { lo: I32_MIN, hi: I32_MAX };
const BOOL: Range = { lo: 0, hi: 1 };

/** Exclusive upper bounds of the kernel's loop variables (both start at 0); absent means unknown. */
export interface VarBounds { readonly gid?: number; readonly ridx?: number }

/** An i32 sum Σ k·e + k0, modulo 2^32 (coefficients are kept as i32 values). */
interface Linear { readonly terms: readonly Term[]; readonly k0: number }
interface Term { readonly e: Expr; readonly k: number }

/** The kernel with its body and epilogue simplified, given gid < n and ridx < reduce.size. */
export function simplifyKernel(k: KernelSpec): KernelSpec {
  const body = simplify(k.body, { gid: k.n, ridx: k.reduce?.size });
  return k.epilogue ? { ...k, body, epilogue: simplify(k.epilogue, { gid: k.n }) } : { ...k, body };
}

/** An expression equal to `e` for every value of its variables within `bounds`. */
export function simplify(e: Expr, bounds: VarBounds): Expr {
  return new Simplifier(bounds, new Map()).simplify(e);
}

class Simplifier {
  // NOTE: keyed by node, not exprKey: lowering shares equal subtrees as one object, and the keys of the
  // unsimplified tree are long strings that would cost more than simplifying it.
  private readonly memo = new Map<Expr, Expr>();
  private readonly ranges = new Map<Expr, Range>();
  private readonly linears = new Map<Expr, Linear>();

  constructor(
    private readonly bounds: VarBounds,
    /** Ranges known to hold where this expression is used (inside a `where`'s taken branch). */
    private readonly facts: ReadonlyMap<string, Range>,
  ) {}

  simplify(e: Expr): Expr {
    let out = this.memo.get(e);
    if (out === undefined) this.memo.set(e, (out = this.rewrite(e)));
    return out;
  }

  private rewrite(e: Expr): Expr {
    switch (e.k) {
      case "const": return e;
      case "var": return this.fold(e);
      case "load": return load(e.slot, this.simplify(e.idx), e.dtype);
      case "cast": return this.fold(cast(this.simplify(e.src), e.dtype));
      case "alu": {
        if (e.op !== "where") return this.node(alu(e.op, ...e.src.map((s) => this.simplify(s))));
        const cond = this.simplify(e.src[0]!);
        // NOTE: the taken branch's value matters only where cond holds, so it is simplified knowing that.
        // Its index may then differ where cond fails (an out-of-range read); such reads already happen
        // today (pad computes negative indices), are defined on every backend, and the value is unused.
        const facts = this.factsOf(cond);
        const taken = facts.size ? new Simplifier(this.bounds, facts).simplify(e.src[1]!) : this.simplify(e.src[1]!);
        return this.fold(alu("where", cond, taken, this.simplify(e.src[2]!)));
      }
    }
  }

  /** Rewrite a node whose operands are already simplified. */
  private node(e: Expr): Expr {
    if (e.k === "alu" && e.dtype === "i32" && e.src.every((s) => s.dtype === "i32")) {
      if (e.op === "add" || e.op === "sub" || e.op === "mul" || e.op === "neg") e = this.build(this.recombine(this.linear(e)));
      else if (e.op === "div") e = this.div(e, e.src[0]!, e.src[1]!);
      else if (e.op === "mod") e = this.mod(e, e.src[0]!, e.src[1]!);
    }
    return this.fold(e);
  }

  /** A constant for an integer or bool expression whose range is one value. */
  private fold(e: Expr): Expr {
    if (e.k === "const" || (e.dtype !== "i32" && e.dtype !== "bool")) return e;
    const r = this.range(e);
    return r.lo === r.hi ? c(r.lo, e.dtype) : e;
  }

  // ---- rules ----

  private div(e: Expr, x: Expr, d: Expr): Expr {
    if (d.k !== "const" || d.v <= 0) return e;
    const dv = d.v;
    if (x.k === "alu" && this.range(x.src[0]!).lo >= 0) {
      const [y, a] = [x.src[0]!, x.src[1]!];
      // (y / a) / d -> y / (a*d)
      if (x.op === "div" && a.k === "const" && a.v > 0) return a.v * dv > I32_MAX ? c(0) : this.node(alu("div", y, c(a.v * dv)));
      // (y % (d*b)) / d -> (y / d) % b
      if (x.op === "mod" && a.k === "const" && a.v > 0 && a.v % dv === 0) {
        return this.node(alu("mod", this.node(alu("div", y, d)), c(a.v / dv)));
      }
    }
    const s = this.split(x, dv);
    if (!s) return e;
    // (q*d + r) / d -> q when 0 <= r < d; -> q + r / d when that takes terms out of the division.
    if (s.r.hi < dv) return this.build(s.q);
    if (s.rest.terms.length < this.linear(x).terms.length) {
      return this.node(alu("add", this.build(s.q), this.node(alu("div", this.build(s.rest), d))));
    }
    // (g*b + r) / (g*m) -> b / m when 0 <= r < g
    const f = this.factor(x, dv);
    return f ? this.node(alu("div", this.build(f.big), c(dv / f.g))) : e;
  }

  private mod(e: Expr, x: Expr, d: Expr): Expr {
    if (d.k !== "const" || d.v <= 0) return e;
    const dv = d.v;
    const xr = this.range(x);
    if (xr.lo >= 0 && xr.hi < dv) return x;
    // (y % (d*b)) % d -> y % d
    if (x.k === "alu" && x.op === "mod") {
      const [y, a] = [x.src[0]!, x.src[1]!];
      if (a.k === "const" && a.v > 0 && a.v % dv === 0 && this.range(y).lo >= 0) return this.node(alu("mod", y, d));
    }
    const s = this.split(x, dv);
    if (!s) return e;
    // (q*d + r) % d -> r when 0 <= r < d; -> r % d when that takes terms out of the remainder.
    const rest = this.build(s.rest);
    if (s.r.hi < dv) return rest;
    if (s.rest.terms.length < this.linear(x).terms.length) return this.node(alu("mod", rest, d));
    // (g*b + r) % (g*m) -> (b % m)*g + r when 0 <= r < g
    const f = this.factor(x, dv);
    if (!f) return e;
    return this.node(alu("add", alu("mul", this.node(alu("mod", this.build(f.big), c(dv / f.g))), c(f.g)), this.build(f.small)));
  }

  /**
   * x = g*big + small with 0 <= small < g, for the largest g (1 < g < d) dividing d and some of x's
   * coefficients for which that holds, when x's exact range is >= 0 (so big >= 0 too).
   */
  private factor(x: Expr, d: number): { g: number; big: Linear; small: Linear } | undefined {
    const lx = this.linear(x);
    const xr = this.linRange(lx);
    if (!xr || xr.lo < 0) return undefined;
    const candidates = [...new Set(lx.terms.map((t) => gcd(Math.abs(t.k), d)))].filter((g) => g > 1 && g < d).sort((a, b) => b - a);
    for (const g of candidates) {
      const small = lx.terms.filter((t) => t.k % g !== 0);
      const sv = this.linRange({ terms: small, k0: 0 });
      if (!sv) continue;
      const r0 = lx.k0 - g * Math.floor((lx.k0 + sv.lo) / g);
      if (sv.hi + r0 >= g) continue;
      const big = lx.terms.filter((t) => t.k % g === 0).map((t) => ({ e: t.e, k: t.k / g }));
      return { g, big: { terms: big, k0: (lx.k0 - r0) / g }, small: { terms: small, k0: r0 } };
    }
    return undefined;
  }

  /**
   * x = q*d + rest with rest's range starting in [0, d), when x's exact range is >= 0 (else undefined).
   * Each coefficient k splits as floor(k / d)*d + (k mod d), and the constant so that rest starts in [0, d).
   */
  private split(x: Expr, d: number): { q: Linear; rest: Linear; r: Range } | undefined {
    const lx = this.linear(x);
    const xr = this.linRange(lx);
    if (!xr || xr.lo < 0) return undefined;
    const restTerms: Term[] = [];
    const qTerms: Term[] = [];
    for (const t of lx.terms) {
      const rk = ((t.k % d) + d) % d;
      if (rk !== 0) restTerms.push({ e: t.e, k: rk });
      if (t.k !== rk) qTerms.push({ e: t.e, k: (t.k - rk) / d });
    }
    const rv = this.linRange({ terms: restTerms, k0: 0 });
    if (!rv) return undefined;
    const r0 = lx.k0 - d * Math.floor((lx.k0 + rv.lo) / d);
    const r = { lo: rv.lo + r0, hi: rv.hi + r0 };
    if (r.hi > I32_MAX) return undefined;
    return { q: { terms: qTerms, k0: (lx.k0 - r0) / d }, rest: { terms: restTerms, k0: r0 }, r };
  }

  // ---- sums ----

  /** `e` as a sum of terms (anything but add/sub/neg/mul-by-constant) modulo 2^32. */
  private linear(e: Expr): Linear {
    let l = this.linears.get(e);
    if (l === undefined) this.linears.set(e, (l = this.computeLinear(e)));
    return l;
  }

  private computeLinear(e: Expr): Linear {
    if (e.k === "const" && e.dtype === "i32") return { terms: [], k0: e.v };
    if (e.k === "alu" && e.dtype === "i32" && e.src.every((s) => s.dtype === "i32")) {
      const [a, b] = [e.src[0]!, e.src[1]!];
      switch (e.op) {
        case "add": return combine(this.linear(a), this.linear(b), 1);
        case "sub": return combine(this.linear(a), this.linear(b), -1);
        case "neg": return scale(this.linear(a), -1);
        case "mul":
          if (b.k === "const") return scale(this.linear(a), b.v);
          if (a.k === "const") return scale(this.linear(b), a.v);
          break;
        default: break;
      }
    }
    return { terms: [{ e, k: 1 }], k0: 0 };
  }

  /** (y / c)*c*k + (y % c)*k -> y*k: a dimension split off and put back (true for any sign of y). */
  private recombine(l: Linear): Linear {
    for (const t of l.terms) {
      if (t.e.k !== "alu" || t.e.op !== "mod") continue;
      const [y, m] = [t.e.src[0]!, t.e.src[1]!];
      if (m.k !== "const" || m.v === 0) continue;
      const qKey = exprKey(this.node(alu("div", y, m)));
      const q = l.terms.find((u) => exprKey(u.e) === qKey);
      if (!q || q.k !== Math.imul(t.k, m.v)) continue;
      const rest = { terms: l.terms.filter((u) => u !== t && u !== q), k0: l.k0 };
      return this.recombine(combine(rest, scale(this.linear(y), t.k), 1));
    }
    return l;
  }

  /** The sum as an expression: terms in key order (so equal sums share their nodes), the constant last. */
  private build(l: Linear): Expr {
    const terms = [...l.terms].sort((x, y) => (exprKey(x.e) < exprKey(y.e) ? -1 : 1));
    let acc: Expr | undefined;
    for (const { e, k } of terms) {
      if (acc !== undefined && k < 0 && k !== I32_MIN) acc = alu("sub", acc, k === -1 ? e : alu("mul", e, c(-k)));
      else {
        const t = k === 1 ? e : alu("mul", e, c(k));
        acc = acc === undefined ? t : alu("add", acc, t);
      }
    }
    if (acc === undefined) return c(l.k0);
    return l.k0 === 0 ? acc : alu("add", acc, c(l.k0));
  }

  /** The exact range of a sum's value, or undefined where it may leave i32 (and so may have wrapped). */
  private linRange(l: Linear): Range | undefined {
    let lo = l.k0;
    let hi = l.k0;
    for (const { e, k } of l.terms) {
      const r = this.range(e);
      lo += Math.min(k * r.lo, k * r.hi);
      hi += Math.max(k * r.lo, k * r.hi);
    }
    return lo >= I32_MIN && hi <= I32_MAX ? { lo, hi } : undefined;
  }

  // ---- ranges ----

  /** Bounds of an i32 or bool expression's value (FULL where nothing is known, and for other dtypes). */
  range(e: Expr): Range {
    let r = this.ranges.get(e);
    if (r === undefined) {
      r = this.computeRange(e);
      const f = this.facts.size ? this.facts.get(exprKey(e)) : undefined;
      if (f && Math.max(r.lo, f.lo) <= Math.min(r.hi, f.hi)) r = { lo: Math.max(r.lo, f.lo), hi: Math.min(r.hi, f.hi) };
      this.ranges.set(e, r);
    }
    return r;
  }

  private computeRange(e: Expr): Range {
    if (e.dtype === "bool" && e.k !== "const" && !(e.k === "alu" && COMPARE.has(e.op))) return BOOL;
    switch (e.k) {
      case "const": return { lo: e.v, hi: e.v };
      case "var": {
        const n = e.name === "gid" ? this.bounds.gid : e.name === "ridx" ? this.bounds.ridx : undefined;
        return e.dtype === "i32" && n !== undefined && n >= 1 ? { lo: 0, hi: n - 1 } : FULL;
      }
      case "load": return e.dtype === "u8" ? { lo: 0, hi: 255 } : FULL;
      case "cast": {
        if (e.dtype !== "i32") return FULL;
        const from = e.src.dtype;
        return from === "bool" || from === "u8" || from === "i32" ? this.range(e.src) : FULL;
      }
      case "alu": return e.dtype === "i32" || e.dtype === "bool" ? this.aluRange(e) : FULL;
    }
  }

  private aluRange(e: Extract<Expr, { k: "alu" }>): Range {
    if (!e.src.every((s) => s.dtype === "i32" || s.dtype === "bool")) return e.dtype === "bool" ? BOOL : FULL;
    const r = e.src.map((s) => this.range(s));
    const [a, b] = [r[0]!, r[1]!];
    switch (e.op) {
      case "cmplt": return a.hi < b.lo ? { lo: 1, hi: 1 } : a.lo >= b.hi ? { lo: 0, hi: 0 } : BOOL;
      case "cmpeq":
      case "cmpne": {
        const eq = a.lo === a.hi && b.lo === b.hi && a.lo === b.lo ? 1 : a.hi < b.lo || b.hi < a.lo ? 0 : undefined;
        if (eq === undefined) return BOOL;
        const v = e.op === "cmpeq" ? eq : 1 - eq;
        return { lo: v, hi: v };
      }
      case "add": case "sub": case "neg": case "mul": {
        const l = this.linear(e);
        if (!isItself(l, e)) return this.linRange(l) ?? FULL;
        // A product of two non-constant operands.
        const p = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
        return within({ lo: Math.min(...p), hi: Math.max(...p) });
      }
      case "div": {
        const dv = e.src[1]!.k === "const" ? b.lo : undefined;
        if (dv === 0) return a;
        if (dv !== undefined) {
          const [x, y] = [Math.trunc(a.lo / dv), Math.trunc(a.hi / dv)];
          return within({ lo: Math.min(x, y), hi: Math.max(x, y) });
        }
        // x / 0 is x, and dividing by a positive number moves toward zero.
        return b.lo >= 0 ? { lo: Math.min(0, a.lo), hi: Math.max(0, a.hi) } : FULL;
      }
      case "mod": {
        // The remainder takes the dividend's sign, is smaller than both |x| and |divisor|, and x % 0 is 0.
        const m = Math.max(Math.abs(b.lo), Math.abs(b.hi)) - 1;
        if (m < 0) return { lo: 0, hi: 0 };
        return { lo: Math.max(Math.min(0, a.lo), -m), hi: Math.min(Math.max(0, a.hi), m) };
      }
      case "max": return { lo: Math.max(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
      case "min": return { lo: Math.min(a.lo, b.lo), hi: Math.min(a.hi, b.hi) };
      case "abs":
        if (a.lo >= 0) return a;
        if (a.lo === I32_MIN) return FULL;
        return a.hi <= 0 ? { lo: -a.hi, hi: -a.lo } : { lo: 0, hi: Math.max(-a.lo, a.hi) };
      case "where": return { lo: Math.min(r[1]!.lo, r[2]!.lo), hi: Math.max(r[1]!.hi, r[2]!.hi) };
      case "and": return a.lo >= 0 && b.lo >= 0 ? { lo: 0, hi: Math.min(a.hi, b.hi) } : FULL;
      default: return e.dtype === "bool" ? BOOL : FULL;
    }
  }

  // ---- facts from a where's condition ----

  /** Ranges that hold wherever `cond` is true, added to this simplifier's own. */
  private factsOf(cond: Expr): Map<string, Range> {
    const out = new Map<string, Range>();
    const add = (x: Expr, r: Range) => {
      if (x.dtype !== "i32") return;
      const key = exprKey(x);
      const prev = out.get(key) ?? this.facts.get(key) ?? FULL;
      out.set(key, { lo: Math.max(prev.lo, r.lo), hi: Math.min(prev.hi, r.hi) });
      // k*t + k0 in [lo, hi] bounds t too, when the sum cannot wrap.
      const l = this.linear(x);
      if (l.terms.length === 1 && l.terms[0]!.k > 0 && !isItself(l, x) && this.linRange(l)) {
        const { e: t, k } = l.terms[0]!;
        add(t, { lo: Math.ceil((Math.max(r.lo, I32_MIN) - l.k0) / k), hi: Math.floor((Math.min(r.hi, I32_MAX) - l.k0) / k) });
      }
    };
    const visit = (p: Expr, holds: boolean) => {
      if (p.k !== "alu") return;
      const [a, b] = [p.src[0]!, p.src[1]!];
      if (p.op === "and" && p.dtype === "bool" && holds) { visit(a, true); visit(b, true); }
      else if (p.op === "not" && p.dtype === "bool") visit(a, !holds);
      else if (p.op === "cmplt" && b.k === "const" && b.dtype === "i32") add(a, holds ? { lo: I32_MIN, hi: b.v - 1 } : { lo: b.v, hi: I32_MAX });
      else if (p.op === "cmplt" && a.k === "const" && a.dtype === "i32") add(b, holds ? { lo: a.v + 1, hi: I32_MAX } : { lo: I32_MIN, hi: a.v });
    };
    visit(cond, true);
    if (out.size === 0) return out;
    for (const [k, r] of this.facts) if (!out.has(k)) out.set(k, r);
    return out;
  }
}

const COMPARE = new Set(["cmplt", "cmpeq", "cmpne"]);

/** Whether a sum is just `e` itself (a term that no rule splits further). */
const isItself = (l: Linear, e: Expr): boolean =>
  l.k0 === 0 && l.terms.length === 1 && l.terms[0]!.k === 1 && exprKey(l.terms[0]!.e) === exprKey(e);

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const within = (r: Range): Range => (r.lo >= I32_MIN && r.hi <= I32_MAX ? r : FULL);

function combine(a: Linear, b: Linear, sign: 1 | -1): Linear {
  const terms = new Map<string, Term>();
  for (const t of a.terms) terms.set(exprKey(t.e), t);
  for (const t of b.terms) {
    const key = exprKey(t.e);
    const k = ((terms.get(key)?.k ?? 0) + sign * t.k) | 0;
    if (k === 0) terms.delete(key);
    else terms.set(key, { e: t.e, k });
  }
  return { terms: [...terms.values()], k0: (a.k0 + sign * b.k0) | 0 };
}

function scale(a: Linear, s: number): Linear {
  if ((s | 0) === 0) return { terms: [], k0: 0 };
  return { terms: a.terms.map((t) => ({ e: t.e, k: Math.imul(t.k, s) })).filter((t) => t.k !== 0), k0: Math.imul(a.k0, s) };
}
