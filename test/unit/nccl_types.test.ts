// nccl_types.test.ts: kiln's dtype and reduction names as the numbers NCCL's ABI gives them. The expected
// values are written out here from NCCL's header (nccl.h, NVIDIA/nccl src/nccl.h.in: the ncclDataType_t and
// ncclRedOp_t enums, unchanged since NCCL 2.x apart from additions at the end: ncclAvg in 2.10, ncclBfloat16
// in 2.10, the two fp8 types in 2.19), by NCCL's enumerator names, so a wrong number in nccl_types.ts (which
// the addon passes straight to NCCL) fails here instead of reducing the wrong type on a GPU.

import { describe, expect, it } from "vitest";
import { NCCL_DATA_TYPES, NCCL_RED_OPS, NCCL_TYPE_BYTES, ncclDataType, ncclRedOp } from "../../src/dist/nccl/nccl_types.js";

/** nccl.h's ncclDataType_t: enumerator, its value, and the kiln name that must map to it. */
const HEADER_TYPES: readonly [string, number, string][] = [
  ["ncclInt8", 0, "i8"], ["ncclUint8", 1, "u8"], ["ncclInt32", 2, "i32"], ["ncclUint32", 3, "u32"],
  ["ncclInt64", 4, "i64"], ["ncclUint64", 5, "u64"], ["ncclFloat16", 6, "f16"], ["ncclFloat32", 7, "f32"],
  ["ncclFloat64", 8, "f64"], ["ncclBfloat16", 9, "bf16"], ["ncclFloat8e4m3", 10, "e4m3"], ["ncclFloat8e5m2", 11, "e5m2"],
];
/** nccl.h's ncclRedOp_t built-in operations. */
const HEADER_OPS: readonly [string, number, string][] = [["ncclSum", 0, "sum"], ["ncclProd", 1, "prod"], ["ncclMax", 2, "max"], ["ncclMin", 3, "min"], ["ncclAvg", 4, "avg"]];

describe("NCCL's enum values", () => {
  it.each(HEADER_TYPES)("%s = %i is kiln's %s", (_enumerator, value, name) => {
    expect(ncclDataType(name)).toBe(value);
  });

  it.each(HEADER_OPS)("%s = %i is kiln's %s", (_enumerator, value, name) => {
    expect(ncclRedOp(name)).toBe(value);
  });

  it("maps every type and op the header has, and nothing else (ncclNumTypes = 12, ncclNumOps = 5: the addon's range check)", () => {
    expect(Object.keys(NCCL_DATA_TYPES).sort()).toEqual(HEADER_TYPES.map(([, , n]) => n).sort());
    expect(Object.keys(NCCL_RED_OPS).sort()).toEqual(HEADER_OPS.map(([, , n]) => n).sort());
    expect(Math.max(...Object.values(NCCL_DATA_TYPES)) + 1).toBe(12);
    expect(Math.max(...Object.values(NCCL_RED_OPS)) + 1).toBe(5);
  });

  it("sizes elements as the types are wide", () => {
    const bytes = Object.fromEntries(HEADER_TYPES.map(([e, , n]) => [n, /8/.test(e) ? 1 : /16/.test(e) ? 2 : /32/.test(e) ? 4 : 8]));
    expect(NCCL_TYPE_BYTES).toEqual(bytes);
  });

  it("names an unknown type or reduction with the known ones", () => {
    expect(() => ncclDataType("f8", "allReduce (collective #3)")).toThrow('allReduce (collective #3): dtype "f8" has no NCCL type (known: i8, u8, i32, u32, i64, u64, f16, f32, f64, bf16, e4m3, e5m2)');
    expect(() => ncclRedOp("mean")).toThrow('nccl: reduction "mean" has no NCCL op (known: sum, prod, max, min, avg)');
    // Inherited names are not types.
    expect(() => ncclDataType("toString")).toThrow('dtype "toString" has no NCCL type');
  });
});
