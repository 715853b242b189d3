// file_tensor.ts: a TensorEntry that reads its bytes from a file at an offset when asked (opening a
// file by path for that one read), dequantizes them to f32 and applies an optional layout fix (HF's q/k row
// permutation, GPT-2 Conv1D transposes). It owns no format knowledge beyond "type at offset".

import type { HostTensor, TensorEntry } from "../types.js";
import { dequantize } from "./dequant.js";
import type { SourceRef } from "./file_source.js";
import { sourceName, withSource } from "./file_source.js";
import type { GgmlTypeName } from "./ggml_types.js";
import { ggmlByteSize } from "./ggml_types.js";

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** `shape` is the result's shape (after `fix`); `fix` maps the stored f32 values to it. */
export function fileTensor(
  ref: SourceRef,
  name: string,
  shape: readonly number[],
  type: GgmlTypeName,
  offset: number,
  fix?: (x: Float32Array) => Float32Array,
): TensorEntry {
  const n = numel(shape);
  const nbytes = ggmlByteSize(type, n, sourceName(ref), name);
  return {
    shape,
    stored: type,
    read(): HostTensor {
      const raw = withSource(ref, (src) => dequantize(type, src.read(offset, nbytes, `tensor '${name}' data`), n));
      return { shape, dtype: "f32", data: fix ? fix(raw) : raw };
    },
    ...(fix ? {} : { readRaw: () => withSource(ref, (src) => src.read(offset, nbytes, `tensor '${name}' data`)) }),
  };
}

/** A TensorEntry over values already in memory (tests, and models built in code). */
export function memoryTensor(shape: readonly number[], data: Float32Array): TensorEntry {
  if (data.length !== numel(shape)) throw new Error(`memoryTensor: ${data.length} values for shape [${shape.join(", ")}]`);
  return { shape, stored: "f32", read: () => ({ shape, dtype: "f32", data }) };
}
