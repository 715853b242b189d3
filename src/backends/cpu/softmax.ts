// softmax.ts is the cpu softmax routine: out[r, :] = exp(x - max) / sum(exp(x - max)) over the last axis of
// a (rows, cols) input, computed in doubles whatever the stored dtype. It follows the primitive formula
// literally, so NaN propagates (max is NaN-sticky) and a row of -inf gives NaN, as the composite does.

import type { SoftmaxSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import { checkLength, readFloats, writeFloats } from "./convert.js";

export function buildSoftmax(spec: SoftmaxSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { rows, cols } = spec;
  const dtype = spec.dtype as FloatDType;
  const out = spec.out as FloatDType;
  const shape = `softmax (${rows}, ${cols}) ${dtype}->${out}`;
  return {
    source: `// cpu routine ${shape}: one row at a time in doubles`,
    run(views) {
      const [y, x] = views as [ArrayBufferView, ArrayBufferView];
      checkLength(y, rows * cols, `${shape}: output`);
      checkLength(x, rows * cols, `${shape}: input`);
      const row = new Float64Array(cols);
      for (let r = 0; r < rows; r++) {
        readFloats(x, dtype, r * cols, cols, row, 0);
        let max = -Infinity;
        for (let j = 0; j < cols; j++) {
          const v = row[j]!;
          if (v > max || v !== v) max = v;
        }
        let sum = 0;
        for (let j = 0; j < cols; j++) sum += row[j] = Math.exp(row[j]! - max);
        for (let j = 0; j < cols; j++) row[j] = row[j]! / sum;
        writeFloats(row, 0, cols, y, out, r * cols);
      }
    },
  };
}
