// scatter_add.ts is the cpu scatter_add routine: out = zeros(rows, cols), out[indices[i], :] += src[i, :].
// NOTE: a sorted segment sum, not a walk over the output: the indices are bucketed by row (a stable
// counting sort, so each row's sources stay in ascending i), then each touched row is summed in doubles
// and rounded once. Cost n x cols + rows x cols (the zero fill), not the one-hot reduction's rows x n x cols,
// and the result does not depend on anything but the inputs (deterministic). Semantics: src/core/routines.ts.

import type { ScatterAddSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import { checkLength, readFloats, writeFloats } from "./convert.js";

export function buildScatterAdd(spec: ScatterAddSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { rows, cols, n } = spec;
  const dtype = spec.dtype as FloatDType;
  const what = `scatter_add ${n} rows of ${cols} into (${rows}, ${cols}) ${dtype}`;
  return {
    source: `// cpu routine ${what}: counting sort by row, then one double-precision sum per touched row`,
    run(views) {
      const [out, indices, src] = views as [ArrayBufferView, Int32Array, ArrayBufferView];
      checkLength(out, rows * cols, `${what}: output`);
      checkLength(indices, n, `${what}: indices`);
      checkLength(src, n * cols, `${what}: src`);
      // start[r] .. start[r + 1] are row r's positions in `order`; out-of-range indices are dropped.
      const start = new Int32Array(rows + 1);
      for (let i = 0; i < n; i++) {
        const r = indices[i]!;
        if (r >= 0 && r < rows) start[r + 1]!++;
      }
      for (let r = 0; r < rows; r++) start[r + 1]! += start[r]!;
      const order = new Int32Array(start[rows]!);
      const fill = start.slice(0, rows);
      for (let i = 0; i < n; i++) {
        const r = indices[i]!;
        if (r >= 0 && r < rows) order[fill[r]!++] = i;
      }
      (out as Uint8Array).fill(0, 0, rows * cols); // +0 in every float dtype's bits
      const acc = new Float64Array(cols);
      const row = new Float64Array(cols);
      for (let r = 0; r < rows; r++) {
        if (start[r] === start[r + 1]) continue;
        acc.fill(0);
        for (let p = start[r]!; p < start[r + 1]!; p++) {
          readFloats(src, dtype, order[p]! * cols, cols, row, 0);
          for (let c = 0; c < cols; c++) acc[c]! += row[c]!;
        }
        writeFloats(acc, 0, cols, out, dtype, r * cols);
      }
    },
  };
}
