// ggml_types.ts: GGML tensor type ids as GGUF files store them, their block sizes, and which of them
// kiln reads. It owns the type table and byte-size arithmetic; dequantization lives in dequant.ts.

import { FormatError } from "./file_source.js";

/** The GGML types kiln reads (and writes: f32, f16, q8_0). */
export type GgmlTypeName = "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_k" | "q6_k";

interface GgmlTypeInfo {
  readonly id: number;
  readonly blockElems: number;
  readonly blockBytes: number;
}

export const GGML_TYPES: Readonly<Record<GgmlTypeName, GgmlTypeInfo>> = {
  f32: { id: 0, blockElems: 1, blockBytes: 4 },
  f16: { id: 1, blockElems: 1, blockBytes: 2 },
  q4_0: { id: 2, blockElems: 32, blockBytes: 18 },
  q8_0: { id: 8, blockElems: 32, blockBytes: 34 },
  q4_k: { id: 12, blockElems: 256, blockBytes: 144 },
  q6_k: { id: 14, blockElems: 256, blockBytes: 210 },
  bf16: { id: 30, blockElems: 1, blockBytes: 2 },
};

/** Names of every GGML type id, for error messages about the ones kiln does not read. */
const ALL_GGML_NAMES: Readonly<Record<number, string>> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
  12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
  21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16",
  34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
};

const BY_ID = new Map<number, GgmlTypeName>(Object.entries(GGML_TYPES).map(([name, t]) => [t.id, name as GgmlTypeName]));

/** The kiln name of a GGML type id, or a FormatError naming the file, the tensor and the id. */
export function ggmlTypeFromId(id: number, file: string, tensor: string): GgmlTypeName {
  const name = BY_ID.get(id);
  if (name !== undefined) return name;
  const known = ALL_GGML_NAMES[id];
  const what = known === undefined ? `unknown tensor type id ${id}` : `tensor type ${known} (id ${id}) is not supported`;
  const supported = Object.keys(GGML_TYPES).map((n) => n.toUpperCase()).join(", ");
  throw new FormatError(file, `tensor '${tensor}' type`, `${what} (kiln reads ${supported})`);
}

/** Bytes taken by `n` elements of a type; n must be a whole number of blocks. */
export function ggmlByteSize(type: GgmlTypeName, n: number, file: string, tensor: string): number {
  const t = GGML_TYPES[type];
  if (n % t.blockElems !== 0) {
    throw new FormatError(file, `tensor '${tensor}' shape`, `${n} elements is not a multiple of the ${type} block size ${t.blockElems}`);
  }
  return (n / t.blockElems) * t.blockBytes;
}
