// Gradients: every differentiable primitive, routine and composite checked against central finite
// differences in float64 on cpu; then the same backward pass on every backend against the f64 one.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import {
  attention, concat, crossEntropy, gelu, getBackend, layernorm, logSoftmax, matmul, rmsnorm, scatterAdd, silu, softmax, tensor,
  withRoutines,
} from "../../src/index.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendsUnderTest, expectClose, tolerance, values } from "./harness.js";

const backends = await backendsUnderTest();
const cpu = await getBackend("cpu");

interface GradCase {
  readonly name: string;
  readonly shapes: readonly (readonly number[])[];
  readonly fn: (...xs: Tensor[]) => Tensor;
  /** Input range (keeps log/sqrt/div away from their poles). */
  readonly lo?: number;
  readonly hi?: number;
  /** Finite-difference step and tolerance, for functions that round (a cast to f32). */
  readonly eps?: number;
  readonly rtol?: number;
}

/** Integer indices on the same backend as `like`. */
const i32 = (like: Tensor, data: number[]) => tensor(data, { backend: like.backend, dtype: "i32" });

const CASES: GradCase[] = [
  { name: "add/sub/mul/div with broadcasting", shapes: [[2, 3], [3]], fn: (a, b) => a.add(b).mul(a).sub(b.mul(2)).div(b.add(3)) },
  { name: "neg recip sqrt exp log", shapes: [[5]], lo: 0.5, hi: 2, fn: (a) => a.neg().exp().add(a.recip()).add(a.sqrt()).add(a.log()) },
  { name: "sin cos tanh abs", shapes: [[6]], fn: (a) => a.sin().mul(a.cos()).add(a.tanh()).add(a.abs()) },
  { name: "pow", shapes: [[4], [4]], lo: 0.5, hi: 2, fn: (a, b) => a.pow(b) },
  { name: "max/min (no ties)", shapes: [[5], [5]], fn: (a, b) => a.maximum(b).mul(a.minimum(b.mul(0.5))) },
  { name: "where", shapes: [[6], [6]], fn: (a, b) => a.gt(0).where(a.mul(b), b.square()) },
  { name: "sum and max reductions", shapes: [[3, 4]], fn: (a) => a.sum(1).mul(a.max(0, true).sum()).add(a.max()) },
  { name: "movement: permute, pad, shrink, expand, reshape", shapes: [[2, 3]], fn: (a) =>
      a.permute([1, 0]).pad([[1, 0], [0, 2]]).shrink([[0, 3], [1, 4]]).reshape([9]).unsqueeze(0).broadcastTo([2, 9]).mul(a.reshape([6]).pad([[0, 3]])) },
  { name: "gather (embedding lookup)", shapes: [[4, 3]], fn: (a) => a.gather(0, i32(a, [3, 0, 3, 1])).square() },
  // Index 9 is out of range: it reads 0, so no row gets its gradient (the scatter-add drops it).
  { name: "gather with an out-of-range index", shapes: [[4, 3]], fn: (a) => a.gather(0, i32(a, [2, 9, 2, 0, 2])).square() },
  { name: "scatter-add (duplicates, out of range)", shapes: [[5, 2]], fn: (a) => scatterAdd(3, i32(a, [1, 1, 0, 7, -2]), a).square() },
  // NOTE: f32 rounding makes small steps meaningless; a linear function with a wide step isolates the rule.
  { name: "cast f64 -> f32 -> f64", shapes: [[3]], eps: 1e-2, rtol: 1e-4, fn: (a) => a.cast("f32").mul(3).cast("f64") },
  { name: "matmul (batched, broadcast)", shapes: [[2, 3, 4], [4, 2]], fn: (a, b) => matmul(a, b) },
  { name: "matmul transposed operand", shapes: [[3, 4], [5, 4]], fn: (a, b) => matmul(a, b.transpose()) },
  // A transposed operand's gradient is computed in its source's layout ((g^T a)^T); batch broadcasts sum back.
  { name: "matmul both operands transposed", shapes: [[4, 3], [5, 4]], fn: (a, b) => matmul(a.transpose(), b.transpose()) },
  { name: "matmul transposed, batched A, broadcast B", shapes: [[2, 4, 3], [5, 4]], fn: (a, b) => matmul(a.transpose(-2, -1), b.transpose()) },
  { name: "matmul transposed, broadcast A, batched B", shapes: [[4, 3], [2, 5, 4]], fn: (a, b) => matmul(a.transpose(), b.transpose(-2, -1)) },
  { name: "softmax", shapes: [[3, 5]], fn: (a) => softmax(a) },
  { name: "log-softmax", shapes: [[3, 5]], fn: (a) => logSoftmax(a) },
  { name: "cross-entropy", shapes: [[4, 5]], fn: (a) => crossEntropy(a, i32(a, [0, 4, 2, 2])) },
  // Rows with a target outside [0, C) add nothing, to the loss or the gradient.
  { name: "cross-entropy, out-of-range targets", shapes: [[4, 5]], fn: (a) => crossEntropy(a, i32(a, [0, 5, -1, 2])) },
  { name: "gelu silu", shapes: [[7]], fn: (a) => gelu(a).add(silu(a)).add(gelu(a, "erf")) },
  { name: "rmsnorm layernorm", shapes: [[2, 5], [5], [5]], fn: (a, w, b) => rmsnorm(a, w).add(layernorm(a, w, b)) },
  { name: "concat", shapes: [[2, 2], [2, 3]], fn: (a, b) => concat([a, b], 1).square() },
  // q, k, v cut from one projection: their gradients tile the axis and are joined (autograd's concat).
  { name: "slices of one tensor (joined gradients)", shapes: [[3, 6]], fn: (a) =>
      a.slice(1, 0, 2).mul(a.slice(1, 2, 4).exp()).add(a.slice(1, 4, 6).square()) },
  { name: "overlapping slices (summed gradients)", shapes: [[3, 6]], fn: (a) => a.slice(1, 0, 4).mul(a.slice(1, 2, 6)) },
  { name: "attention causal GQA", shapes: [[1, 2, 3, 4], [1, 1, 3, 4], [1, 1, 3, 4]], fn: (q, k, v) => attention(q, k, v, { causal: true }) },
];

/** A scalar from the output with random weights, so every output element's gradient matters. */
function scalarize(y: Tensor, seed: number): Tensor {
  const w = tensor(values(y.numel, "f64", seed), { backend: y.backend, dtype: y.dtype, shape: y.shape });
  return y.mul(w).sum();
}

async function analytic(c: GradCase, backend: typeof cpu, dtype: "f64" | "f32", inputs: number[][], routines: boolean): Promise<number[][]> {
  const xs = inputs.map((d, i) => tensor(d, { backend, dtype, shape: c.shapes[i], requiresGrad: true }));
  const loss = withRoutines(routines, () => scalarize(c.fn(...xs), 42));
  loss.backward();
  return Promise.all(xs.map(async (x) => Array.from(await x.grad!.data())));
}

async function numeric(c: GradCase, inputs: number[][]): Promise<number[][]> {
  const eps = c.eps ?? 1e-6;
  const f = async (ins: number[][]) => {
    const xs = ins.map((d, i) => tensor(d, { backend: cpu, dtype: "f64", shape: c.shapes[i] }));
    return scalarize(withRoutines(false, () => c.fn(...xs)), 42).item();
  };
  const out: number[][] = [];
  for (let i = 0; i < inputs.length; i++) {
    const g: number[] = [];
    for (let j = 0; j < inputs[i]!.length; j++) {
      const plus = inputs.map((d) => [...d]), minus = inputs.map((d) => [...d]);
      plus[i]![j]! += eps;
      minus[i]![j]! -= eps;
      g.push(((await f(plus)) - (await f(minus))) / (2 * eps));
    }
    out.push(g);
  }
  return out;
}

const inputsFor = (c: GradCase) => c.shapes.map((s, i) => values(s.reduce((a, b) => a * b, 1), "f64", 100 + i, c.lo ?? -2, c.hi ?? 2));

describe("gradients by finite differences (f64, cpu)", () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const inputs = inputsFor(c);
      const want = await numeric(c, inputs);
      for (const routines of [false, true]) {
        const got = await analytic(c, cpu, "f64", inputs, routines);
        got.forEach((g, i) => expectClose(g, want[i]!, { rtol: c.rtol ?? 1e-5, atol: 1e-6 }, `${c.name} d/dx${i} (routines ${routines})`));
      }
    });
  }
  it("accumulates across backward calls and noGrad records nothing", async () => {
    const { noGrad } = await import("../../src/index.js");
    const x = tensor([1, 2, 3], { backend: cpu, requiresGrad: true });
    x.mul(x).sum().backward();
    x.mul(3).sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 7, 9]);
    const y = noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(() => y.sum().backward()).toThrow(/does not require a gradient/);
  });
});

for (const b of backends.filter((x) => x.name !== "cpu")) {
  describe.skipIf(!b.backend)(`gradients on ${b.name} match f64${skipLabel(noBackend(b.name, b.missing))}`, () => {
    for (const c of CASES.filter((x) => !x.name.startsWith("cast"))) {
      it(c.name, async () => {
        const inputs = inputsFor(c).map((d) => d.map(Math.fround));
        const want = await analytic(c, cpu, "f64", inputs, false);
        const got = await analytic(c, b.backend!, "f32", inputs, true);
        got.forEach((g, i) => expectClose(g, want[i]!, tolerance("f32", 20), `${c.name} d/dx${i} on ${b.name}`));
      });
    }
  });
}
