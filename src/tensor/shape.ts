// shape.ts: shape arithmetic for the tensor API (broadcasting, axis normalization, reshape's -1).
// Pure functions over number arrays; errors name the op and the shapes involved.

export const fmt = (s: readonly number[]): string => `(${s.join(", ")})`;

/** NumPy broadcasting of several shapes. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new Error(`${op}: cannot broadcast shapes ${shapes.map(fmt).join(" and ")}`);
      }
    }
  }
  return out;
}

export function normAxis(op: string, axis: number, rank: number, shape: readonly number[]): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new Error(`${op}: axis ${axis} is out of range for shape ${fmt(shape)}`);
  }
  return a;
}

/** Resolve a single -1 in a reshape target. */
export function resolveReshape(from: readonly number[], to: readonly number[]): number[] {
  const total = from.reduce((a, b) => a * b, 1);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1) throw new Error(`reshape: more than one -1 in ${fmt(to)}`);
  for (const d of to) {
    if (d !== -1 && (!Number.isInteger(d) || d < 0)) throw new Error(`reshape: bad dimension ${d} in ${fmt(to)}`);
  }
  const known = to.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : total / known) : d));
  if (out.reduce((a, b) => a * b, 1) !== total || out.some((d) => !Number.isInteger(d))) {
    throw new Error(`reshape: cannot reshape ${fmt(from)} (${total} elements) to ${fmt(to)}`);
  }
  return out;
}

/** Infer the shape of a nested JS array. */
export function shapeOf(data: unknown): number[] {
  const shape: number[] = [];
  let x = data;
  while (Array.isArray(x)) {
    shape.push(x.length);
    x = x[0];
  }
  return shape;
}

export function flatten(data: unknown, shape: readonly number[], out: number[] = [], depth = 0): number[] {
  if (depth === shape.length) {
    out.push(Number(data));
    return out;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new Error(`tensor data is ragged: expected ${shape[depth]} entries at depth ${depth} for shape ${fmt(shape)}`);
  }
  for (const x of data) flatten(x, shape, out, depth + 1);
  return out;
}
