// nccl_types.ts: kiln's names for element types and reductions, as NCCL's ncclDataType_t and ncclRedOp_t
// numbers. The one table of them: the addon (cuda/src/nccl.cc) takes the numbers and checks only their
// range, so a new type is added here alone. The values are nccl.h's (NVIDIA/nccl src/nccl.h.in), part of
// NCCL's ABI and unchanged since 2.x; test/unit/nccl_types.test.ts checks them against the header's text.

/** ncclDataType_t by kiln's dtype name (nccl.h: ncclInt8 = 0 ... ncclFloat8e5m2 = 11). */
export const NCCL_DATA_TYPES = {
  i8: 0,
  u8: 1,
  i32: 2,
  u32: 3,
  i64: 4,
  u64: 5,
  f16: 6,
  f32: 7,
  f64: 8,
  bf16: 9,
  e4m3: 10,
  e5m2: 11,
} as const;

/** ncclRedOp_t by kiln's reduction name (nccl.h: ncclSum = 0 ... ncclAvg = 4). */
export const NCCL_RED_OPS = {
  sum: 0,
  prod: 1,
  max: 2,
  min: 3,
  avg: 4,
} as const;

export type NcclDType = keyof typeof NCCL_DATA_TYPES;
export type NcclReduceOp = keyof typeof NCCL_RED_OPS;

/** Bytes per element of each type, for buffer sizes (count * bytes). */
export const NCCL_TYPE_BYTES: Readonly<Record<NcclDType, number>> = {
  i8: 1, u8: 1, i32: 4, u32: 4, i64: 8, u64: 8, f16: 2, f32: 4, f64: 8, bf16: 2, e4m3: 1, e5m2: 1,
};

const has = (table: object, key: string) => Object.prototype.hasOwnProperty.call(table, key);

/** The ncclDataType_t of `dtype`; an unknown name is an error listing the known ones. */
export function ncclDataType(dtype: string, where = "nccl"): number {
  if (!has(NCCL_DATA_TYPES, dtype)) throw new Error(`${where}: dtype ${JSON.stringify(dtype)} has no NCCL type (known: ${Object.keys(NCCL_DATA_TYPES).join(", ")})`);
  return NCCL_DATA_TYPES[dtype as NcclDType];
}

/** The ncclRedOp_t of `op`; an unknown name is an error listing the known ones. */
export function ncclRedOp(op: string, where = "nccl"): number {
  if (!has(NCCL_RED_OPS, op)) throw new Error(`${where}: reduction ${JSON.stringify(op)} has no NCCL op (known: ${Object.keys(NCCL_RED_OPS).join(", ")})`);
  return NCCL_RED_OPS[op as NcclReduceOp];
}
