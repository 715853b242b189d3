// rows_kernel.ts emits the WebAssembly SIMD functions of the cpu matmul's few-rows path (decode: a handful
// of rows of A against a large B that is streamed once, never packed):
//   - B stored (n, k) (x @ W^T): dot tiles, c[i][j] = dot(a_i, b_j), both rows contiguous in memory;
//   - B stored (k, n): row-strided micro-kernels, C tile += A panel . B rows read in place (row stride ldb).
// It owns these functions' arithmetic and their memory conventions (below); matmul_kernel.ts assembles the
// module, and the few-rows driver (matmul_rows.ts) lays out memory, copies B in and stores C.

import { FuncBody, I32, V128 } from "./encoder.js";

/*
 * Conventions (all addresses and strides in bytes, f32 data):
 *   dot tiles: A rows at a + r*lda (lda a multiple of 16, each row zero-padded to a multiple of 4 floats);
 *     B rows at b + q*ldb, k floats each, any 4-byte alignment; C row r at c + r*ldc, 4 columns stored.
 *     kv = floor(k / 4) full steps, rem = k % 4 tail floats (read as a full vector whose extra lanes
 *     are masked to 0, so the vector may run up to 12 bytes past a row: the caller leaves that slack).
 *   strided micro-kernels: A panel [kc][4] floats (4-row panels of the packed path, unused rows ignored),
 *     B rows of 8 floats at bp + kk*ldb, C tile rows at cp + r*ldc; the tile is added into C.
 */

/** B rows per dot tile: their 4 dots reduce into one f32x4 of C. */
const DOT_COLS = 4;

/** Pushes [x0[0] + x0[2], x1[0] + x1[2], x0[1] + x0[3], x1[1] + x1[3]]: half of a 4-way horizontal sum. */
function halfSum(f: FuncBody, x0: number, x1: number): void {
  f.get(x0).get(x1).f32x4Shuffle([0, 4, 1, 5]);
  f.get(x0).get(x1).f32x4Shuffle([2, 6, 3, 7]);
  f.f32x4Add();
}

/**
 * dotTile(a, lda, b, ldb, c, ldc, kv, rem): for r < rows, c_r[0..4) = (dot(a_r, b_0), ..., dot(a_r, b_3)).
 * NOTE: rows is 1 or 2: 2 rows x 4 B rows = 8 f32x4 accumulators + 2 A + 1 B vector fit x64's 16 xmm
 * registers (3 rows ran at half the speed, likely spills). Unrolling the k loop by two ran slower (V8, Zen 4),
 * and so did one offset added to fixed row pointers instead of bumping each pointer.
 */
export function dotTile(rows: number): FuncBody {
  const f = new FuncBody(8);
  const [a, lda, b, ldb, c, ldc, kv, rem] = [0, 1, 2, 3, 4, 5, 6, 7];
  const acc = Array.from({ length: rows * DOT_COLS }, () => f.local(V128));
  const av = Array.from({ length: rows }, () => f.local(V128));
  const bv = f.local(V128);
  const mask = f.local(V128);
  const ap = Array.from({ length: rows }, () => f.local(I32));
  const bp = Array.from({ length: DOT_COLS }, () => f.local(I32));
  const end = f.local(I32);
  for (const x of acc) f.v128Zero().set(x);
  f.get(a).set(ap[0]!);
  for (let r = 1; r < rows; r++) f.get(ap[r - 1]!).get(lda).i32Add().set(ap[r]!);
  f.get(b).set(bp[0]!);
  for (let q = 1; q < DOT_COLS; q++) f.get(bp[q - 1]!).get(ldb).i32Add().set(bp[q]!);

  const step = (masked: boolean) => {
    for (let r = 0; r < rows; r++) f.get(ap[r]!).v128Load(0).set(av[r]!);
    for (let q = 0; q < DOT_COLS; q++) {
      f.get(bp[q]!).v128Load(0);
      if (masked) f.get(mask).v128And();
      f.set(bv);
      for (let r = 0; r < rows; r++) {
        const x = acc[r * DOT_COLS + q]!;
        f.get(x).get(av[r]!).get(bv).f32x4Mul().f32x4Add().set(x);
      }
    }
  };
  const advance = (bytes: number) => {
    for (const p of [...ap, ...bp]) f.get(p).i32(bytes).i32Add().set(p);
  };

  // Full steps until a_0 reaches end = a + kv * 16, then the masked tail.
  f.get(a).get(kv).i32(16).i32Mul().i32Add().set(end);
  f.block().loop();
  f.get(ap[0]!).get(end).i32Eq().brIf(1);
  step(false);
  advance(16);
  f.br(0).end().end();
  f.get(rem).if();
  f.get(rem).i32x4Splat().i32x4Const([0, 1, 2, 3]).i32x4GtS().set(mask);
  step(true);
  f.end();

  // Reduce each row's 4 accumulators into one vector of 4 dots and store it.
  for (let r = 0; r < rows; r++) {
    const [x0, x1, x2, x3] = acc.slice(r * DOT_COLS, (r + 1) * DOT_COLS) as [number, number, number, number];
    halfSum(f, x0, x1);
    f.set(x0);
    halfSum(f, x2, x3);
    f.set(x2);
    // [x0, x1, x2, x3 lanes 0+2] + [x0, x1, x2, x3 lanes 1+3]
    f.get(c);
    if (r > 0) f.get(ldc).i32(r).i32Mul().i32Add();
    f.get(x0).get(x2).f32x4Shuffle([0, 1, 4, 5]);
    f.get(x0).get(x2).f32x4Shuffle([2, 3, 6, 7]);
    f.f32x4Add().v128Store(0);
  }
  return f;
}

/**
 * dots(a, lda, b, ldb, c, ldc, rows, quads, kv, rem): C[rows x 4*quads] = A . B^T for `quads` groups of 4 B rows,
 * each group against every row of A (pairs of rows, then a last odd row). rows, quads >= 1.
 * NOTE: B rows outer: a group of 4 B rows stays in L1 while the rows of A (few, from L2) stream past it.
 */
export function dotsDriver(tile2: number, tile1: number): FuncBody {
  const f = new FuncBody(10);
  const [a, lda, b, ldb, c, ldc, rows, quads, kv, rem] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [ar, cr, i] = [f.local(I32), f.local(I32), f.local(I32)];
  const tile = (fn: number) => f.get(ar).get(lda).get(b).get(ldb).get(cr).get(ldc).get(kv).get(rem).call(fn);
  f.loop();
  {
    f.get(a).set(ar);
    f.get(c).set(cr);
    f.get(rows).set(i);
    f.block().loop();
    {
      f.get(i).i32(2).i32LtS().brIf(1);
      tile(tile2);
      f.get(ar).get(lda).i32(2).i32Mul().i32Add().set(ar);
      f.get(cr).get(ldc).i32(2).i32Mul().i32Add().set(cr);
      f.get(i).i32(2).i32Sub().set(i);
      f.br(0);
    }
    f.end().end();
    f.get(i).if();
    tile(tile1);
    f.end();
    f.get(b).get(ldb).i32(DOT_COLS).i32Mul().i32Add().set(b);
    f.get(c).i32(DOT_COLS * 4).i32Add().set(c);
    f.get(quads).i32(1).i32Sub().tee(quads).brIf(0);
  }
  f.end();
  return f;
}

/**
 * rows(ap, panelBytes, bp, ldb, cp, ldc, rows, tiles, kc): C[rows x 8*tiles] += A panels . B (kc rows of
 * 8*tiles columns, row stride ldb), by 8-column tiles (outer) and 4-row A panels (inner, the last one partial).
 * micro[r - 1] is the strided micro-kernel for r rows. rows, tiles, kc >= 1.
 */
export function rowsDriver(micro: readonly [number, number, number, number]): FuncBody {
  const f = new FuncBody(9);
  const [ap, panelBytes, bp, ldb, cp, ldc, rows, tiles, kc] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [apc, cpc, i] = [f.local(I32), f.local(I32), f.local(I32)];
  const call = (fn: number) => f.get(apc).get(bp).get(cpc).get(kc).get(ldc).get(ldb).call(fn);
  f.loop();
  {
    f.get(ap).set(apc);
    f.get(cp).set(cpc);
    f.get(rows).set(i);
    f.block().loop();
    {
      f.get(i).i32(4).i32LtS().brIf(1);
      call(micro[3]);
      f.get(apc).get(panelBytes).i32Add().set(apc);
      f.get(cpc).get(ldc).i32(4).i32Mul().i32Add().set(cpc);
      f.get(i).i32(4).i32Sub().set(i);
      f.br(0);
    }
    f.end().end();
    for (let r = 3; r >= 1; r--) {
      f.get(i).i32(r).i32Eq().if();
      call(micro[r - 1]!);
      f.end();
    }
    f.get(bp).i32(32).i32Add().set(bp);
    f.get(cp).i32(32).i32Add().set(cp);
    f.get(tiles).i32(1).i32Sub().tee(tiles).brIf(0);
  }
  f.end();
  return f;
}
