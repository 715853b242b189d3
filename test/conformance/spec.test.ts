// The spec of what ops mean, as hand-written expected values (spec_int, spec_float, spec_cast,
// spec_shape): the one check of the cpu backend's own semantics, since the cpu renderer also builds
// every conformance reference. The same cases run on every other backend present; where one
// legitimately differs, the skip table says so with its reason.

import { describe, expect, it } from "vitest";
import { tensor } from "../../src/index.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendFor, backendsUnderTest, expectClose } from "./harness.js";
import type { SpecCase } from "./spec_case.js";
import { EXACT } from "./spec_case.js";
import { CAST_CASES } from "./spec_cast.js";
import { FLOAT_CASES } from "./spec_float.js";
import { INT_CASES } from "./spec_int.js";
import { SHAPE_CASES } from "./spec_shape.js";

const backends = await backendsUnderTest();
const GROUPS: readonly (readonly [string, readonly SpecCase[]])[] = [
  ["integers and bool", INT_CASES], ["floats", FLOAT_CASES], ["casts", CAST_CASES], ["reductions, views, gathers", SHAPE_CASES],
];

for (const b of backends) {
  describe.skipIf(!b.backend)(`spec on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, () => {
    for (const [group, cases] of GROUPS) {
      describe(group, () => {
        for (const c of cases) {
          it(c.name, async (ctx) => {
            const backend = backendFor(ctx, b, c.name, c.inputs[0]!.dtype);
            const xs = c.inputs.map((inp) => tensor([...inp.data], { backend, dtype: inp.dtype, shape: inp.shape ?? [inp.data.length] }));
            const out = c.fn(...xs);
            if (c.wantShape) expect(out.shape).toEqual(c.wantShape);
            expectClose(Array.from(await out.data()), c.want, c.tol ?? EXACT, `${c.name} on ${b.name}`);
          });
        }
      });
    }
  });
}

describe("spec cases", () => {
  it("have unique names, so the skip table and the report name one case each", () => {
    const names = GROUPS.flatMap(([, cases]) => cases.map((c) => c.name));
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });
  it("cover every unary and binary op of the op table", async () => {
    const { BINARY_OPS, UNARY_OPS } = await import("../../src/core/ops.js");
    const named = new Set(GROUPS.flatMap(([, cases]) => cases.map((c) => c.name.split(" ")[0])));
    expect([...UNARY_OPS, ...BINARY_OPS].filter((op) => !named.has(op))).toEqual([]);
  });
});
