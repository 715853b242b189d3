// buffer_pool.ts keeps freed GPU storage buffers, bucketed by size, for the next alloc of that bucket.
// It owns buffer creation and destruction; it knows nothing of what a buffer holds or of command order
// (backend.ts decides when a buffer is safe to reuse or destroy).

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * The bucket a request falls in: 256 bytes at least, then four steps per power of two, so a pooled
 * buffer wastes under a quarter of itself. Never above `limit` (the device's largest buffer).
 */
export function bucketSize(nbytes: number, limit: number): number {
  const n = Math.max(256, Math.ceil(nbytes / 4) * 4);
  const step = 2 ** Math.floor(Math.log2(n)) / 4;
  return Math.min(Math.ceil(n / step) * step, Math.max(limit - (limit % 4), n));
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private pooledBytes = 0;

  /** `maxPooledBytes` bounds what freed buffers may hold before they are destroyed instead. */
  constructor(
    private readonly device: GPUDevice,
    private readonly limit: number,
    private readonly maxPooledBytes = 512 * 2 ** 20,
  ) {}

  /** A buffer of at least `nbytes`; `reused` says it held earlier data (a new one is zeroed). */
  acquire(nbytes: number): { buffer: GPUBuffer; reused: boolean } {
    const size = bucketSize(nbytes, this.limit);
    const buffer = this.free.get(size)?.pop();
    if (buffer) {
      this.pooledBytes -= size;
      return { buffer, reused: true };
    }
    return { buffer: this.device.createBuffer({ size, usage: USAGE(), label: `kiln ${size}B` }), reused: false };
  }

  /** Takes a buffer back; returns it when the pool is full, for the caller to destroy when that is safe. */
  release(buffer: GPUBuffer): GPUBuffer | undefined {
    if (this.pooledBytes + buffer.size > this.maxPooledBytes) return buffer;
    let list = this.free.get(buffer.size);
    if (!list) this.free.set(buffer.size, (list = []));
    list.push(buffer);
    this.pooledBytes += buffer.size;
    return undefined;
  }

  destroyAll(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooledBytes = 0;
  }
}
