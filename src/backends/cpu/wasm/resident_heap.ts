// resident_heap.ts: the part of the matmul kernel's shared wasm memory where large cpu buffers live, so the
// kernels read a weight where it is instead of copying it in for every product (a decode step used to copy
// every weight byte into the kernel's scratch first: read, written to L2, read again).
// The memory's layout (matmul_kernel.ts): scratch [0, base) that the kernels' reserve() grows, and this heap
// [base, limit). Blocks are first fit over an address-ordered free list, 64-byte aligned, coalesced on free,
// each followed by SLACK bytes that no other block uses (the kernels read up to 64 bytes past an operand: a
// masked tail vector, a last 8-column tile, a conversion group). The memory is grown to cover the heap's top;
// pages grown but never written cost no resident memory (the OS maps them on first touch).
// NOTE: a shared memory's growth never detaches an old SharedArrayBuffer object: each buffer keeps the
// memory.buffer it was allocated under, whose length covers it. It owns the free list and the set of
// SharedArrayBuffer objects that are this memory (wasmAddress); the CpuBuffer lifetime is backend.ts's.

/** Alignment of every block (a cache line; also any typed array's element size). */
const ALIGN = 64;
/** Bytes after each block that belong to it: the kernels' over-read past an operand's end. */
export const SLACK = 64;

const alignUp = (x: number): number => Math.ceil(x / ALIGN) * ALIGN;

interface Span {
  addr: number;
  size: number;
}

export class ResidentHeap {
  /** Free spans below top, address order, never adjacent (coalesced). */
  private readonly free: Span[] = [];
  /** Sizes of live blocks by address. */
  private readonly live = new Map<number, number>();
  /** Everything at or above top has never been handed out, so it is still zero (as the memory grew). */
  private top: number;
  /** SharedArrayBuffer objects of this memory handed out (one per size the memory had). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  constructor(readonly memory: WebAssembly.Memory, readonly base: number, readonly limit: number) {
    if (base % ALIGN !== 0) throw new Error(`resident heap: base ${base} is not a multiple of ${ALIGN}`);
    this.top = base;
  }

  /**
   * A zeroed block of at least `bytes` (+ SLACK) bytes: its address, or undefined when the heap cannot hold it
   * (the caller then falls back to a buffer of its own).
   */
  alloc(bytes: number): number | undefined {
    const size = alignUp(Math.max(bytes, 1) + SLACK);
    for (let i = 0; i < this.free.length; i++) {
      const s = this.free[i]!;
      if (s.size < size) continue;
      const addr = s.addr;
      if (s.size === size) this.free.splice(i, 1);
      else {
        s.addr += size;
        s.size -= size;
      }
      // A reused span holds a freed block's bytes; a new allocation reads as zeros (as an ArrayBuffer does).
      new Uint8Array(this.sab(), addr, size).fill(0);
      this.live.set(addr, size);
      return addr;
    }
    if (this.top + size > this.limit) return undefined;
    const addr = this.top;
    const need = addr + size;
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      try {
        this.memory.grow(Math.ceil((need - have) / 65536));
      } catch {
        return undefined; // the engine or the OS refused the address space: a buffer of its own instead
      }
    }
    this.top = need;
    this.live.set(addr, size);
    return addr;
  }

  /** Returns a block to the free list, merged with free neighbours (alloc() zeroes it when it is reused). */
  release(addr: number): void {
    const size = this.live.get(addr);
    if (size === undefined) throw new Error(`resident heap: no live block at ${addr} (freed twice?)`);
    this.live.delete(addr);
    // NOTE: a linear scan: the list holds a few dozen spans at most (weights are allocated once).
    let i = 0;
    while (i < this.free.length && this.free[i]!.addr < addr) i++;
    const prev = this.free[i - 1];
    if (prev && prev.addr + prev.size === addr) {
      prev.size += size;
      i--;
    } else this.free.splice(i, 0, { addr, size });
    const cur = this.free[i]!;
    const next = this.free[i + 1];
    if (next && cur.addr + cur.size === next.addr) {
      cur.size += next.size;
      this.free.splice(i + 1, 1);
    }
  }

  /** The memory's current SharedArrayBuffer, remembered as this memory's (wasmAddress recognises it). */
  sab(): SharedArrayBuffer {
    const b = this.memory.buffer as unknown as SharedArrayBuffer;
    this.buffers.add(b);
    return b;
  }

  /** Whether `buffer` is this memory (as it was at some size). */
  owns(buffer: ArrayBufferLike): boolean {
    return this.buffers.has(buffer);
  }

  /** Bytes in live blocks, the heap's top (its extent above base) and free spans: for tests and reports. */
  stats(): { liveBytes: number; liveBlocks: number; extent: number; freeSpans: number } {
    let liveBytes = 0;
    for (const s of this.live.values()) liveBytes += s;
    return { liveBytes, liveBlocks: this.live.size, extent: this.top - this.base, freeSpans: this.free.length };
  }
}

let active: ResidentHeap | undefined;

/** Makes `heap` the one wasmAddress() and the cpu backend's large buffers use (matmul_kernel.ts, once). */
export function setResidentHeap(heap: ResidentHeap | undefined): void {
  active = heap;
}

/** The heap large cpu buffers live in, when there is one (a shared kernel memory; see residentWanted). */
export const residentHeap = (): ResidentHeap | undefined => active;

/**
 * The wasm address of a view's first byte when it lies in the kernel memory (a resident buffer: a kernel
 * can read it in place), else undefined (the kernel copies it in).
 */
export function wasmAddress(view: ArrayBufferView): number | undefined {
  return active !== undefined && active.owns(view.buffer) ? view.byteOffset : undefined;
}

/**
 * Whether large buffers live in the kernel memory: KILN_CPU_RESIDENT=1 always (one thread too, over a shared
 * memory), 0 never (each in its own buffer, copied in per product: the old path, for comparisons), unset:
 * with worker threads only. NOTE: with one thread the old path's memory is unshared and its copies fast, and
 * on 2026-12-07 (loaded machine, alternating runs) the 85.7M decode at one thread measured no better
 * resident (4.3 / 9.1 tokens/s resident against 9.8 / 22.0 copied in, the load falling through the runs):
 * not proven a loss, but not the default until a quiet run says so.
 */
export function residentWanted(threads: number): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CPU_RESIDENT;
  if (env === "0") return false;
  if (env === "1") return true;
  if (env !== undefined && env !== "") throw new Error(`KILN_CPU_RESIDENT must be 0 or 1, got ${JSON.stringify(env)}`);
  return threads > 1;
}
