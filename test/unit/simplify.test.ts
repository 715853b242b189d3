// simplify.test.ts: the index simplifier keeps every value and removes the redundant arithmetic.
// Values are checked with a small interpreter written here from the op semantics (i32 wraps, division
// truncates, x / 0 = x, x % 0 = 0), not with the renderer, so a wrong rule cannot agree with itself.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Expr, KernelSpec } from "../../src/core/ir.js";
import { add, alu, and, c, exprKey, idiv, load, lt, mod, mul, toposort, v, where } from "../../src/core/ir.js";
import { Index } from "../../src/core/index_expr.js";
import { simplify } from "../../src/core/simplify.js";
import { schedule } from "../../src/core/schedule.js";
import { tensor } from "../../src/index.js";

interface Env { gid: number; ridx: number; data: readonly number[] }

/** The value of an integer/bool expression (bools as 0/1); loads read `data`, 0 out of range. */
function evalI(e: Expr, env: Env): number {
  const ev = (x: Expr) => evalI(x, env);
  switch (e.k) {
    case "const": return e.v;
    case "var": return e.name === "gid" ? env.gid : e.name === "ridx" ? env.ridx : 0;
    case "load": return env.data[ev(e.idx)] ?? 0;
    case "cast": return e.dtype === "bool" ? (ev(e.src) !== 0 ? 1 : 0) : ev(e.src) | 0;
    case "alu": {
      const [a, b, w] = e.src.map(ev) as [number, number, number];
      switch (e.op) {
        case "add": return e.dtype === "bool" ? (a || b ? 1 : 0) : (a + b) | 0;
        case "sub": return (a - b) | 0;
        case "mul": return Math.imul(a, b);
        case "neg": return -a | 0;
        case "div": return b === 0 ? a : Math.trunc(a / b) | 0;
        case "mod": return b === 0 ? 0 : (a % b) | 0;
        case "max": return Math.max(a, b);
        case "min": return Math.min(a, b);
        case "abs": return Math.abs(a) | 0;
        case "cmplt": return a < b ? 1 : 0;
        case "cmpeq": return a === b ? 1 : 0;
        case "cmpne": return a !== b ? 1 : 0;
        case "and": return e.dtype === "bool" ? (a && b ? 1 : 0) : a & b;
        case "not": return e.dtype === "bool" ? (a ? 0 : 1) : ~a;
        case "where": return a ? b : w;
        default: throw new Error(`evalI: no ${e.op}`);
      }
    }
  }
}

const gid = v("gid");
const ridx = v("ridx");
const count = (e: Expr, ops: readonly string[]) => toposort(e).filter((x) => x.k === "alu" && ops.includes(x.op)).length;

/** Random i32 index expressions over gid and ridx, with the shapes lowering produces and some it does not. */
const exprArb = fc.letrec<{ e: Expr }>((tie) => {
  const sub = tie("e") as fc.Arbitrary<Expr>;
  const k = fc.oneof(fc.integer({ min: -40, max: 40 }), fc.constantFrom(32, 64, 128, 384, 768, 2048, 1 << 20, 1 << 30, -(2 ** 31)));
  const pos = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(32, 64, 128, 768, 2048, 1 << 16));
  return {
    e: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constantFrom(gid, ridx),
      k.map((x) => c(x)),
      fc.tuple(sub, sub).map(([a, b]) => add(a, b)),
      fc.tuple(sub, sub).map(([a, b]) => alu("sub", a, b)),
      fc.tuple(sub, k).map(([a, x]) => mul(a, c(x))),
      fc.tuple(sub, sub).map(([a, b]) => mul(a, b)),
      fc.tuple(sub, pos).map(([a, x]) => idiv(a, c(x))),
      fc.tuple(sub, pos).map(([a, x]) => mod(a, c(x))),
      fc.tuple(sub, sub).map(([a, b]) => idiv(a, b)),
      fc.tuple(sub, sub).map(([a, b]) => mod(a, b)),
      sub.map((a) => alu("neg", a)),
      fc.tuple(sub, sub).map(([a, b]) => alu("max", a, b)),
      fc.tuple(sub, sub).map(([a, b]) => alu("min", a, b)),
      sub.map((a) => load(1, a, "i32")),
      // A pad's guard: the taken branch is simplified knowing lo <= x < hi.
      fc.tuple(sub, k, pos, sub, sub).map(([x, lo, n, a, b]) => where(and(alu("not", lt(x, c(lo))), lt(x, c(lo + n))), a, b)),
      fc.tuple(sub, sub, sub, sub).map(([x, y, a, b]) => where(lt(x, y), a, b)),
    ),
  };
}).e;

describe("simplify: values", () => {
  it("a random index expression has the same value before and after, for gid and ridx in range", () => {
    fc.assert(
      fc.property(
        exprArb,
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: -3000, max: 3000 }), { minLength: 4, maxLength: 16 }),
        (e, n, size, points, data) => {
          const s = simplify(e, { gid: n, ridx: size });
          const at = [[0, 0], [n - 1, size - 1], ...points.map(([x, y]) => [Math.floor(x * n), Math.floor(y * size)])];
          for (const [g, r] of at) {
            const env = { gid: g!, ridx: r!, data };
            expect(evalI(s, env), `${exprKey(e)} -> ${exprKey(s)} at gid ${g}, ridx ${r}`).toBe(evalI(e, env));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("a random chain of reshapes and permutes indexes the same element as the host's unravel/permute/ravel", () => {
    const dimsArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 });
    let [divsBefore, divsAfter, worse, runs] = [0, 0, 0, 0];
    fc.assert(
      fc.property(dimsArb, fc.array(fc.tuple(fc.boolean(), fc.nat()), { minLength: 1, maxLength: 4 }), (shape0, steps) => {
        const numel = shape0.reduce((a, b) => a * b, 1);
        // Build the chain from the output side, as lowering does: each step maps an index in its output to its input.
        let shape = shape0;
        let idx = Index.flat(shape, gid);
        const host: ((i: number[]) => number[])[] = []; // per step: output position -> input position (as dims)
        for (const [isPermute, seed] of steps) {
          if (isPermute) {
            const perm = permutation(shape.length, seed);
            // out[i] = in[perm[i]]: the input has shape s with s[perm[i]] = shape[i].
            const src = new Array<number>(shape.length);
            perm.forEach((p, i) => (src[p] = shape[i]!));
            const d = idx.dims();
            const sd = new Array<Expr>(d.length);
            perm.forEach((p, i) => (sd[p] = d[i]!));
            idx = Index.ofDims(src, sd);
            host.push((pos) => { const o = new Array<number>(pos.length); perm.forEach((p, i) => (o[p] = pos[i]!)); return o; });
            shape = src;
          } else {
            const src = factorize(numel, seed);
            const [from, to] = [shape, src];
            idx = Index.flat(src, idx.linear());
            host.push((pos) => unravel(ravel(pos, from), to));
            shape = src;
          }
        }
        const before = idx.linear();
        const after = simplify(before, { gid: numel });
        for (let g = 0; g < numel; g++) {
          let pos = unravel(g, shape0);
          for (const f of host) pos = f(pos);
          const want = ravel(pos, shape);
          const env = { gid: g, ridx: 0, data: [] };
          expect(evalI(before, env)).toBe(want);
          expect(evalI(after, env)).toBe(want);
        }
        const [b, a] = [count(before, ["div", "mod"]), count(after, ["div", "mod"])];
        [divsBefore, divsAfter, worse, runs] = [divsBefore + b, divsAfter + a, worse + (a > b ? 1 : 0), runs + 1];
      }),
      { numRuns: 500 },
    );
    // NOTE: a rule can cost one division where the form it replaced was shared; over many chains they save a lot.
    expect(divsAfter).toBeLessThan(0.8 * divsBefore);
    expect(worse).toBeLessThanOrEqual(runs / 100);
  });
});

describe("simplify: rules", () => {
  const same = (a: Expr, b: Expr) => expect(exprKey(a)).toBe(exprKey(b));

  it("(a*c + b) / c -> a and (a*c + b) % c -> b when 0 <= b < c", () => {
    const x = add(mul(gid, c(32)), ridx);
    same(simplify(idiv(x, c(32)), { gid: 10, ridx: 32 }), gid);
    same(simplify(mod(x, c(32)), { gid: 10, ridx: 32 }), ridx);
    // b may reach c: the division keeps b's share, and the remainder keeps its modulo.
    const split = simplify(idiv(x, c(32)), { gid: 10, ridx: 64 });
    expect([exprKey(add(gid, idiv(ridx, c(32)))), exprKey(add(idiv(ridx, c(32)), gid))]).toContain(exprKey(split));
    same(simplify(mod(x, c(32)), { gid: 10, ridx: 64 }), mod(ridx, c(32)));
  });

  it("x % c -> x and x / c -> 0 when 0 <= x < c; comparisons the ranges decide fold", () => {
    same(simplify(mod(gid, c(64)), { gid: 64 }), gid);
    same(simplify(idiv(gid, c(64)), { gid: 64 }), c(0));
    same(simplify(lt(gid, c(64)), { gid: 64 }), c(1, "bool"));
    same(simplify(lt(gid, c(0)), { gid: 64 }), c(0, "bool"));
    // Unknown bounds decide nothing.
    same(simplify(mod(gid, c(64)), {}), mod(gid, c(64)));
  });

  it("(x / a) / b -> x / (a*b), (x % (a*b)) / a -> (x / a) % b, (x % (a*b)) % a -> x % a", () => {
    // (g*b + r) / (g*m) -> b / m when 0 <= r < g: here ((gid / 4)*4 + gid % 4) / 24 -> gid / 24.
    same(simplify(idiv(add(mul(idiv(gid, c(4)), c(4)), mod(gid, c(4))), c(24)), { gid: 1000 }), idiv(gid, c(24)));
    same(simplify(idiv(idiv(gid, c(4)), c(8)), { gid: 1000 }), idiv(gid, c(32)));
    same(simplify(idiv(mod(gid, c(96)), c(32)), { gid: 1000 }), mod(idiv(gid, c(32)), c(3)));
    same(simplify(mod(mod(gid, c(96)), c(32)), { gid: 1000 }), mod(gid, c(32)));
  });

  it("leaves division alone where the dividend may be negative or may have wrapped", () => {
    const neg = idiv(add(gid, c(-5)), c(4)); // truncation is not flooring below zero
    same(simplify(neg, { gid: 100 }), neg);
    // gid * 2^30 wraps for gid >= 2: ((gid * 2^30) + 3) % 2^30 is not 3 there.
    const wraps = mod(add(mul(gid, c(1 << 30)), c(3)), c(1 << 30));
    const s = simplify(wraps, { gid: 8 });
    for (let g = 0; g < 8; g++) expect(evalI(s, { gid: g, ridx: 0, data: [] })).toBe(evalI(wraps, { gid: g, ridx: 0, data: [] }));
  });

  it("a permute of a reshape (E_permute_12x4x64x32 in training) collapses to one decomposition of gid", () => {
    // Lowering's expression for that kernel: gid's dims, recomposed into a flat index, decomposed again.
    const t1 = mod(idiv(gid, c(2048)), c(4));
    const t3 = idiv(gid, c(8192));
    const t7 = mod(idiv(gid, c(32)), c(64));
    const t10 = mod(gid, c(32));
    const t11 = add(add(add(mul(t1, c(24576)), mul(t3, c(2048))), mul(t7, c(32))), t10);
    const t19 = add(add(mul(mod(idiv(t11, c(32)), c(768)), c(128)), mul(idiv(t11, c(24576)), c(32))), mod(t11, c(32)));
    const body = alu("add", load(1, add(mul(idiv(t19, c(128)), c(384)), mod(t19, c(128))), "f32"), load(2, mod(t19, c(128)), "f32"));
    const s = simplify(body, { gid: 98304 });
    // What is left: gid / 8192, (gid / 2048) % 4, (gid / 32) % 64, gid % 32, each dividing gid itself.
    const divs = toposort(s).filter((x) => x.k === "alu" && (x.op === "div" || x.op === "mod"));
    expect(divs.length).toBe(6);
    for (const d of divs) {
      const src = (d as { src: readonly Expr[] }).src[0]!;
      expect(src.k === "var" || (src.k === "alu" && src.op === "div" && src.src[0]!.k === "var"), exprKey(d)).toBe(true);
    }
    // And it still reads the same elements: (d0, d1, d2, d3) of (12, 4, 64, 32) -> [(d0, d2) * 384 + d1 * 32 + d3] and [d1 * 32 + d3].
    const idx = (e: Expr) => (e as { idx: Expr }).idx;
    const [l1, l2] = toposort(s).filter((x) => x.k === "load");
    for (let g = 0; g < 98304; g += 97) {
      const [d0, d1, d2, d3] = unravel(g, [12, 4, 64, 32]);
      const env = { gid: g, ridx: 0, data: [] };
      expect(evalI(idx(l1!), env)).toBe((d0! * 64 + d2!) * 384 + d1! * 32 + d3!);
      expect(evalI(idx(l2!), env)).toBe(d1! * 32 + d3!);
    }
  });

  it("a where's taken branch is simplified knowing its condition (a concat's padded reads)", () => {
    // Element gid of (768, 384) reads the second (768, 128) part at row gid / 384, column gid % 384 - 128.
    const col = alu("sub", mod(gid, c(384)), c(128));
    const flat = add(mul(idiv(gid, c(384)), c(128)), col);
    const read = load(1, add(mul(idiv(flat, c(128)), c(128)), mod(flat, c(128))), "f32");
    const e = where(and(alu("not", lt(col, c(0))), lt(col, c(128))), read, c(0, "f32"));
    const s = simplify(e, { gid: 768 * 384 });
    const loadIdx = (toposort(s).find((x) => x.k === "load") as { idx: Expr }).idx;
    // Within the branch, 0 <= col < 128: the read is at flat itself, with no division left but gid's own.
    same(loadIdx, simplify(flat, { gid: 768 * 384 }));
    expect(count(loadIdx, ["div", "mod"])).toBe(2);
  });
});

describe("simplify: in the schedule", () => {
  it("a scheduled permute-of-reshape kernel carries the simplified index, and reads the right elements", async () => {
    const x = tensor(Array.from({ length: 4 * 6 * 8 }, (_, i) => i), { shape: [24, 8] });
    const y = x.reshape([4, 6, 2, 4]).permute([2, 0, 3, 1]).reshape([8, 24]).permute([1, 0]);
    const items = schedule([y.node]);
    const k = items.find((i) => i.kind === "kernel") as { spec: KernelSpec } | undefined;
    expect(k).toBeDefined();
    // Before simplification this index decomposes gid, recomposes it and decomposes it again.
    // Out (i, j) of (24, 8) reads (j % 4, i % 6, j / 4, i / 6) of (4, 6, 2, 4): with i = gid / 8 and j = gid % 8,
    // that is gid % 4, (gid / 8) % 6, (gid / 4) % 2 and gid / 48, each dividing gid itself.
    expect(count(k!.spec.body, ["div", "mod"])).toBe(6);
    const got = [...(await y.data())];
    const want = Array.from({ length: 192 }, (_, g) => {
      const [i, j] = unravel(g, [24, 8]);
      return ravel([j! % 4, i! % 6, Math.floor(j! / 4), Math.floor(i! / 6)], [4, 6, 2, 4]);
    });
    expect(got).toEqual(want);
  });

});

// ---- host index helpers ----

function unravel(i: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) { out[d] = i % shape[d]!; i = Math.floor(i / shape[d]!); }
  return out;
}

function ravel(pos: readonly number[], shape: readonly number[]): number {
  return pos.reduce((acc, p, d) => acc * shape[d]! + p, 0);
}

/** A permutation of 0..n-1 picked by seed. */
function permutation(n: number, seed: number): number[] {
  const rest = Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  while (rest.length) { out.push(rest.splice(seed % rest.length, 1)[0]!); seed = Math.floor(seed / 2) + 1; }
  return out;
}

/** A shape with `numel` elements picked by seed (its prime factors grouped into up to 4 dims). */
function factorize(numel: number, seed: number): number[] {
  const primes: number[] = [];
  for (let n = numel, p = 2; n > 1; ) if (n % p === 0) { primes.push(p); n /= p; } else p++;
  const dims = [1, 1, 1, 1].slice(0, 1 + (seed % 4));
  primes.forEach((p, i) => (dims[(seed + i * 7) % dims.length]! *= p));
  return dims;
}
