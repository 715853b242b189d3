// Bad input: every error names the op, the shapes or dtypes involved, and the backend.

import { describe, expect, it } from "vitest";
import { attention, matmul, tensor } from "../../src/index.js";

describe("errors name the op, shapes/dtypes and backend", () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  it("shape mismatch", () => {
    expect(() => a.add(tensor([1, 2, 3, 4]))).toThrow(/add \(f32, f32 on cpu\): cannot broadcast shapes \(2, 3\) and \(4\)/);
    expect(() => matmul(a, a)).toThrow(/matmul: inner dimensions differ: \(2, 3\) @ \(2, 3\) on cpu/);
    expect(() => a.reshape([4, 2])).toThrow(/reshape: cannot reshape \(2, 3\).*to \(4, 2\).*f32 on cpu/);
    expect(() => attention(a.reshape([1, 1, 2, 3]), a.reshape([1, 1, 3, 2]), a.reshape([1, 1, 3, 2]))).toThrow(/attention: incompatible q \(1, 1, 2, 3\)/);
  });
  it("dtype mismatch", () => {
    const i = tensor([1, 2], { dtype: "i32" });
    expect(() => i.exp()).toThrow(/exp: needs a float tensor, got Tensor\(2\) i32 on cpu/);
    expect(() => a.xor(a)).toThrow(/xor: needs integer or bool tensors/);
    expect(() => matmul(a, tensor([[1], [2], [3]], { dtype: "f16" }))).toThrow(/matmul: dtypes differ: f32 @ f16/);
  });
  it("axes and indices out of range", () => {
    expect(() => a.sum(2)).toThrow(/sum of Tensor\(2, 3\) f32 on cpu: axis 2 is out of range for shape \(2, 3\)/);
    expect(() => a.permute([0, 0])).toThrow(/not a permutation/);
    expect(() => a.shrink([[0, 3], [0, 1]])).toThrow(/shrink: ranges .* do not fit shape \(2, 3\)/);
    expect(() => a.gather(0, tensor([0.5]))).toThrow(/gather: indices must be a 1-D integer tensor/);
  });
  it("use of a disposed tensor", async () => {
    const t = tensor([1, 2, 3]);
    const u = t.mul(2);
    t.dispose();
    expect(() => t.add(1)).toThrow(/use of a disposed tensor/);
    await expect(u.data()).rejects.toThrow(/use of a disposed tensor: buffer \(3\) f32 on cpu/);
  });
  it("bad host data", () => {
    expect(() => tensor([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => tensor([1, 2, 3], { shape: [2, 2] })).toThrow(/3 values do not fill shape \(2, 2\)/);
  });
});
