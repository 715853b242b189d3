// concat.ts is the cpu concat routine: each output row is the parts' rows one after another, copied
// as stored (any dtype: every operand's view has the output's element type). Semantics: src/core/routines.ts.

import type { ConcatSpec } from "../../core/routines.js";
import { checkLength } from "./convert.js";

type View = { set(src: ArrayLike<number>, offset: number): void; subarray(a: number, b: number): ArrayLike<number> };

export function buildConcat(spec: ConcatSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { outer, parts } = spec;
  const total = parts.reduce((a, b) => a + b, 0);
  const what = `concat ${outer} rows of (${parts.join(" + ")}) ${spec.dtype}`;
  return {
    source: `// cpu routine ${what}: row copies`,
    run(views) {
      const out = views[0] as unknown as View;
      checkLength(views[0]!, outer * total, `${what}: output`);
      parts.forEach((len, p) => checkLength(views[p + 1]!, outer * len, `${what}: part ${p}`));
      let at = 0;
      parts.forEach((len, p) => {
        const src = views[p + 1] as unknown as View;
        for (let o = 0; o < outer; o++) out.set(src.subarray(o * len, (o + 1) * len), o * total + at);
        at += len;
      });
    },
  };
}
