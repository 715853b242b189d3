// Spec cases for reductions (empty axes, NaN and Inf, integer wrap-around), views (permute, expand,
// pad, shrink, a reshape of a transposed view), gather (out-of-range rows read 0) and the composites
// whose result is exact (concat, scatter-add, argmax's first-maximum rule). Expected values are
// worked out by hand from the index rules, with inputs 0, 1, 2, ... so each output names its source.

import { argmax, arange, concat, scatterAdd } from "../../src/index.js";
import type { SpecCase } from "./spec_case.js";

const NaN_ = NaN, Inf = Infinity, MIN = -2147483648, MAX = 2147483647;
const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

export const SHAPE_CASES: readonly SpecCase[] = [
  {
    name: "reduce sum f32: NaN and Inf - Inf give NaN, Inf stays",
    inputs: [{ dtype: "f32", data: [1, NaN_, 2, Inf, -Inf, 1, Inf, 1, 2], shape: [3, 3] }],
    fn: (x) => x.sum(1), want: [NaN_, NaN_, Inf],
  },
  {
    name: "reduce max f32: NaN is sticky, all -Inf gives -Inf",
    inputs: [{ dtype: "f32", data: [1, NaN_, 2, -Inf, -Inf, -Inf, -1, Inf, 3, NaN_, 5, 4], shape: [4, 3] }],
    fn: (x) => x.max(1), want: [NaN_, -Inf, Inf, NaN_],
  },
  { name: "reduce sum f32: an empty axis sums to 0", inputs: [{ dtype: "f32", data: [], shape: [2, 0] }], fn: (x) => x.sum(1), want: [0, 0] },
  { name: "reduce max f32: an empty axis is -Inf", inputs: [{ dtype: "f32", data: [], shape: [2, 0] }], fn: (x) => x.max(1), want: [-Inf, -Inf] },
  { name: "reduce sum i32: an empty axis sums to 0", inputs: [{ dtype: "i32", data: [], shape: [2, 0] }], fn: (x) => x.sum(1), want: [0, 0] },
  // NOTE: not i32's least value: an empty i32 max is 0 (JS stores its -Infinity start as 0; WGSL copies that).
  { name: "reduce max i32: an empty axis is 0", inputs: [{ dtype: "i32", data: [], shape: [2, 0] }], fn: (x) => x.max(1), want: [0, 0] },
  { name: "reduce max u32: an empty axis is 0", inputs: [{ dtype: "u32", data: [], shape: [1, 0] }], fn: (x) => x.max(1), want: [0] },
  {
    name: "reduce sum i32: wraps modulo 2^32",
    inputs: [{ dtype: "i32", data: [MAX, 1, MIN, -1], shape: [2, 2] }], fn: (x) => x.sum(1), want: [MIN, MAX],
  },
  { name: "reduce sum u32: wraps modulo 2^32", inputs: [{ dtype: "u32", data: [4294967295, 2], shape: [1, 2] }], fn: (x) => x.sum(1), want: [1] },
  { name: "reduce max i32: signed order", inputs: [{ dtype: "i32", data: [-5, MIN, -7], shape: [1, 3] }], fn: (x) => x.max(1), want: [-5] },
  { name: "reduce max u32: unsigned order", inputs: [{ dtype: "u32", data: [0, 4294967295, 7], shape: [1, 3] }], fn: (x) => x.max(1), want: [4294967295] },
  {
    name: "permute i32: out[k][i][j] = x[i][j][k]",
    inputs: [{ dtype: "i32", data: iota(24), shape: [2, 3, 4] }], fn: (x) => x.permute([2, 0, 1]), wantShape: [4, 2, 3],
    want: [0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23],
  },
  {
    name: "expand i32: repeats along new and size-1 axes",
    inputs: [{ dtype: "i32", data: [1, 2, 3], shape: [3, 1] }], fn: (x) => x.broadcastTo([2, 3, 2]), wantShape: [2, 3, 2],
    want: [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3],
  },
  {
    name: "pad f32: zeros before and after",
    inputs: [{ dtype: "f32", data: [1, 2, 3, 4], shape: [2, 2] }], fn: (x) => x.pad([[1, 0], [0, 2]]), wantShape: [3, 4],
    want: [0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0],
  },
  {
    name: "shrink i32: the inner window",
    inputs: [{ dtype: "i32", data: iota(12), shape: [3, 4] }], fn: (x) => x.shrink([[1, 3], [1, 3]]), wantShape: [2, 2],
    want: [5, 6, 9, 10],
  },
  {
    name: "reshape i32 of a transposed view, then a row sum",
    inputs: [{ dtype: "i32", data: iota(6), shape: [2, 3] }], fn: (x) => x.transpose().reshape([2, 3]).sum(1),
    want: [0 + 3 + 1, 4 + 2 + 5],
  },
  {
    name: "gather f32 rows: out-of-range and negative indices read 0",
    inputs: [{ dtype: "f32", data: iota(12), shape: [4, 3] }, { dtype: "i32", data: [2, 0, -1, 4, 3] }],
    fn: (x, i) => x.gather(0, i!), wantShape: [5, 3], want: [6, 7, 8, 0, 1, 2, 0, 0, 0, 0, 0, 0, 9, 10, 11],
  },
  {
    name: "gather i32 columns",
    inputs: [{ dtype: "i32", data: iota(6), shape: [2, 3] }, { dtype: "i32", data: [2, 0, 3] }],
    fn: (x, i) => x.gather(1, i!), want: [2, 0, 0, 5, 3, 0],
  },
  {
    name: "arange i32: start, stop, step",
    inputs: [{ dtype: "i32", data: [0] }], fn: (x) => arange(2, 11, 3, { backend: x.backend }).add(x), want: [2, 5, 8],
  },
  {
    name: "concat f32 along columns",
    inputs: [{ dtype: "f32", data: [1, 2, 3, 4], shape: [2, 2] }, { dtype: "f32", data: [5, 6], shape: [2, 1] }],
    fn: (x, y) => concat([x, y!], 1), want: [1, 2, 5, 3, 4, 6],
  },
  {
    name: "scatter-add f32: rows summed at their indices",
    inputs: [{ dtype: "f32", data: [1, 2, 3, 4, 5, 6], shape: [3, 2] }, { dtype: "i32", data: [1, 0, 1] }],
    fn: (s, i) => scatterAdd(3, i!, s), want: [3, 4, 6, 8, 0, 0],
  },
  {
    name: "argmax f32: the first of equal maxima",
    inputs: [{ dtype: "f32", data: [1, 3, 3, 2, 5, 1, 5, 0, -Inf, -Inf, -Inf, -Inf], shape: [3, 4] }],
    fn: (x) => argmax(x, -1), want: [1, 0, 0],
  },
  {
    // NOTE: NumPy's rule: a NaN is the maximum, so the first NaN's index (never n, one past the row).
    name: "argmax f32: a row with NaN gives its first NaN",
    inputs: [{ dtype: "f32", data: [1, NaN_, 3, NaN_, NaN_, 0, 1, 2], shape: [2, 4] }],
    fn: (x) => argmax(x, -1), want: [1, 0],
  },
];
