// masked_write.ts writes bytes that do not fill whole 4-byte words (a u8/bool/f16 element at an odd
// position): WebGPU copies whole words only, so those bytes are merged into their words on the device,
// dst[w] = (dst[w] & ~mask) | (value & mask), recorded in command order. It owns that small pipeline and
// the split of a write into whole words and merged words; backend.ts decides where the pieces go.

/** One merged word: the bytes of `value` under `mask` replace those of word `index`. */
export interface MaskedWord {
  readonly index: number;
  readonly value: number;
  readonly mask: number;
}

/**
 * Splits a write of `src` at byte `offset` into the whole words it covers (`whole`, starting at byte
 * `wordOffset`) and the at most two words it covers in part (first and last).
 */
export function splitWrite(offset: number, src: Uint8Array): { wordOffset: number; whole: Uint8Array; partial: MaskedWord[] } {
  const end = offset + src.byteLength;
  const first = Math.ceil(offset / 4) * 4;
  const last = Math.floor(end / 4) * 4;
  const partial: MaskedWord[] = [];
  const merge = (from: number, to: number) => {
    let value = 0;
    let mask = 0;
    for (let b = from; b < to; b++) {
      value |= src[b - offset]! << ((b & 3) * 8);
      mask |= 0xff << ((b & 3) * 8);
    }
    partial.push({ index: from >> 2, value: value >>> 0, mask: mask >>> 0 });
  };
  if (first > last) {
    merge(offset, end); // inside one word
    return { wordOffset: first, whole: src.subarray(0, 0), partial };
  }
  if (offset < first) merge(offset, first);
  if (last < end) merge(last, end);
  return { wordOffset: first, whole: src.subarray(first - offset, last - offset), partial };
}

const CODE = `@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(0) @binding(1) var<storage, read> words: array<u32>; // (index, value, mask) per workgroup
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) id: vec3<u32>) {
  let i = words[id.x * 3u];
  let mask = words[id.x * 3u + 2u];
  dst[i] = (dst[i] & ~mask) | (words[id.x * 3u + 1u] & mask);
}`;

export class MaskedWriter {
  private pipeline: GPUComputePipeline | undefined;
  constructor(private readonly device: GPUDevice) {}

  /** Records the merge of `words` into `dst`; returns the parameter buffer, to destroy once submitted. */
  record(encoder: GPUCommandEncoder, dst: GPUBuffer, words: readonly MaskedWord[]): GPUBuffer {
    const label = "kiln masked write";
    this.pipeline ??= this.device.createComputePipeline({
      layout: "auto",
      compute: { module: this.device.createShaderModule({ code: CODE, label }) },
      label,
    });
    const params = this.device.createBuffer({ size: words.length * 12, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Uint32Array(params.getMappedRange()).set(words.flatMap((w) => [w.index, w.value, w.mask]));
    params.unmap();
    const bindGroup = this.device.createBindGroup({
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: dst } }, { binding: 1, resource: { buffer: params } }],
    });
    const pass = encoder.beginComputePass({ label });
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(words.length);
    pass.end();
    return params;
  }
}
