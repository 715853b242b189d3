// arena.ts: a wasm kernel's memory as the host sees it: grown on demand (never shrunk: it keeps the
// largest launch's working set for the next one) and viewed as f32 and as u16 (f16/bf16 bits copied in).
// The matmul and attention kernels each own one; what lives where inside it is theirs.

export class WasmArena {
  private f32View: Float32Array;
  private u16View: Uint16Array;

  constructor(readonly memory: WebAssembly.Memory, private readonly what: string) {
    this.f32View = new Float32Array(memory.buffer);
    this.u16View = new Uint16Array(memory.buffer);
  }

  /** Make the memory at least `need` bytes; returns a Float32Array over all of it (fresh after a grow). */
  reserve(need: number): Float32Array {
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      try {
        this.memory.grow(Math.ceil((need - have) / 65536));
      } catch (e) {
        throw new Error(`${this.what}: cannot grow wasm memory to ${need} bytes (wasm32 allows 4 GiB): ${String(e)}`);
      }
    }
    // NOTE: compared by size: a shared memory's `buffer` is a new object after a grow, and views of the old one stop short.
    if (this.f32View.byteLength !== this.memory.buffer.byteLength) {
      this.f32View = new Float32Array(this.memory.buffer);
      this.u16View = new Uint16Array(this.memory.buffer);
    }
    return this.f32View;
  }

  /** A Uint16Array over the memory as last reserved. */
  u16(): Uint16Array {
    return this.u16View;
  }
}
