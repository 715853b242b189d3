// mutations.ts: the ways the model-file fuzz damages a real file, as fast-check arbitraries and the
// functions that apply them: byte flips, integers overwritten with boundary values (0, -1, 2^31,
// 2^32-1, 2^63, ...) where header fields live, truncation at any offset, junk appended, and for JSON
// (safetensors headers, config.json, index.json, tokenizer.json) a value anywhere in the tree replaced
// by a lying one. It knows no format; model_file_targets.ts says which mutations each file gets.

import fc from "fast-check";

/** Integers a corrupt or hostile header holds: the edges of every width, and sizes just past limits. */
export const BOUNDARY_INTS: readonly bigint[] = [
  0n, 1n, 2n, 3n, 7n, 0xffn, 0xffffn, 2n ** 22n, 2n ** 24n, 2n ** 24n + 1n, 1_000_000_000n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n,
  2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n,
];

/** JSON values a lying header holds. */
export const BOUNDARY_JSON: readonly unknown[] = [
  0, -1, 1, 1.5, 2 ** 31, 2 ** 32 - 1, 2 ** 53, 1e9, -1e9, 1e308, null, true, "", "x", "../../etc/hostname", "/etc/hostname",
  "F64", "BF16", [], [0], [0, 2 ** 40], [2 ** 31, 2 ** 31], {}, { a: 1 },
];

export type ByteMutation =
  | { readonly kind: "flip"; readonly at: number; readonly xor: number }
  | { readonly kind: "int"; readonly at: number; readonly bytes: 1 | 2 | 4 | 8; readonly value: bigint }
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "append"; readonly junk: Uint8Array };

export type JsonMutation =
  | { readonly kind: "replace"; readonly node: number; readonly value: unknown }
  | { readonly kind: "delete"; readonly node: number }
  | { readonly kind: "add"; readonly node: number; readonly key: string; readonly value: unknown };

/** An offset in [0, size): mostly in the first `header` bytes, where the sizes and offsets are. */
function offset(size: number, header: number): fc.Arbitrary<number> {
  const h = Math.max(1, Math.min(header, size));
  return fc.oneof({ weight: 3, arbitrary: fc.nat({ max: h - 1 }) }, { weight: 1, arbitrary: fc.nat({ max: Math.max(0, size - 1) }) });
}

/** One byte mutation of a file of `size` bytes whose header is its first `header` bytes. */
export function byteMutation(size: number, header: number): fc.Arbitrary<ByteMutation> {
  const at = offset(size, header);
  return fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at, xor: fc.integer({ min: 1, max: 255 }) }),
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant("int" as const),
        at,
        bytes: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
        value: fc.oneof(fc.constantFrom(...BOUNDARY_INTS), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
      }),
    },
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat({ max: Math.max(0, size - 1) }) }),
    fc.record({ kind: fc.constant("append" as const), junk: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  );
}

/** Where a header holds an integer (a count, a length, a dimension, an offset) and its width in bytes. */
export interface IntField {
  readonly at: number;
  readonly bytes: 4 | 8;
}

/** A boundary (or random) value written over one of a header's integer fields: a lying size or offset. */
export function fieldMutation(fields: readonly IntField[]): fc.Arbitrary<ByteMutation> {
  return fc.record({
    kind: fc.constant("int" as const),
    field: fc.constantFrom(...fields),
    value: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...BOUNDARY_INTS) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  }).map(({ kind, field, value }) => ({ kind, at: field.at, bytes: field.bytes, value }));
}

/** A copy of `base` with the mutations applied in order. */
export function applyBytes(base: Uint8Array, ms: readonly ByteMutation[]): Uint8Array {
  let b = base.slice();
  for (const m of ms) {
    switch (m.kind) {
      case "flip":
        if (m.at < b.length) b[m.at]! ^= m.xor;
        break;
      case "int": {
        const mask = (1n << BigInt(8 * m.bytes)) - 1n;
        let v = m.value & mask;
        for (let i = 0; i < m.bytes && m.at + i < b.length; i++, v >>= 8n) b[m.at + i] = Number(v & 0xffn);
        break;
      }
      case "truncate":
        b = b.slice(0, m.at);
        break;
      case "append": {
        const out = new Uint8Array(b.length + m.junk.length);
        out.set(b);
        out.set(m.junk, b.length);
        b = out;
        break;
      }
    }
  }
  return b;
}

/** One JSON mutation; `node` picks a value of the tree in visiting order (modulo their count). */
export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("replace" as const), node: fc.nat(), value: fc.constantFrom(...BOUNDARY_JSON) }) },
  fc.record({ kind: fc.constant("delete" as const), node: fc.nat() }),
  fc.record({ kind: fc.constant("add" as const), node: fc.nat(), key: fc.constantFrom("__proto__", "constructor", "x", "", "0"), value: fc.constantFrom(...BOUNDARY_JSON) }),
);

type Container = Record<string, unknown> | unknown[];

/** Every (parent, key) pair in the tree, in visiting order. */
function slots(root: unknown): [Container, string | number][] {
  const out: [Container, string | number][] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), visit(x)));
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) out.push([v as Record<string, unknown>, k]), visit(x);
  };
  visit(root);
  return out;
}

/** A mutated deep copy of `json` (a parsed JSON value). */
export function applyJson(json: unknown, ms: readonly JsonMutation[]): unknown {
  const root = structuredClone(json);
  for (const m of ms) {
    const all = slots(root);
    if (all.length === 0) continue;
    const [parent, key] = all[m.node % all.length]!;
    const clone = () => structuredClone("value" in m ? m.value : null);
    if (m.kind === "replace") (parent as Record<string | number, unknown>)[key] = clone();
    else if (m.kind === "delete") {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
    } else {
      const target = (parent as Record<string | number, unknown>)[key];
      if (typeof target === "object" && target !== null && !Array.isArray(target)) Object.defineProperty(target, m.key, { value: clone(), enumerable: true, writable: true, configurable: true });
      else if (Array.isArray(target)) target.push(clone());
    }
  }
  return root;
}
