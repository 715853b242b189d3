// comm.ts: the Communicator interface, the contract every transport (local processes today, nccl later)
// implements, and the one piece of arithmetic the transports and their callers must agree on: how an array
// of n elements is cut into world-size chunks. It owns no sockets and no devices.
// NOTE: this first slice works on host Float32Arrays (plain data); collectives as graph nodes on device
// buffers come later and will call a Communicator underneath. Every method is async, and every rank must
// call the same collectives in the same order (as with NCCL and torch.distributed); send/recv pair up in
// the order they are called between two ranks.

export type ReduceOp = "sum" | "max";

export interface Communicator {
  /** This process's rank, 0 <= rank < size. */
  readonly rank: number;
  /** The world size: how many ranks take part. */
  readonly size: number;
  /** The element-wise reduction of every rank's `data` (same length on every rank); a new array, bit-identical on every rank. */
  allReduce(data: Float32Array, op?: ReduceOp): Promise<Float32Array>;
  /** Every rank's `data` (same length n on every rank) concatenated in rank order: (size * n). */
  allGather(data: Float32Array): Promise<Float32Array>;
  /** This rank's chunk (see chunkBounds) of the element-wise sum of every rank's `data` (same length on every rank). */
  reduceScatter(data: Float32Array, op?: "sum"): Promise<Float32Array>;
  /** The root's `data`, on every rank; the other ranks pass an array of the same length (as torch does). */
  broadcast(data: Float32Array, root: number): Promise<Float32Array>;
  /** Sends `data` to rank `dst`; resolves once it is handed to the transport. */
  send(data: Float32Array, dst: number): Promise<void>;
  /** The next array rank `src` sent to this rank. */
  recv(src: number): Promise<Float32Array>;
  /**
   * Every rank's `data` (same length on every rank, divisible by size) cut into size equal chunks; chunk r goes
   * to rank r, and the result holds the chunks this rank received, in rank order (same length as `data`).
   */
  allToAll(data: Float32Array): Promise<Float32Array>;
  /**
   * A communicator over some of this one's ranks (`ranks`, in this communicator's numbering, ascending), for
   * a process group of a device mesh. Only members call it, each the same groups in the same order; it
   * shares this communicator's connections, and closing it leaves them open.
   */
  group(ranks: readonly number[]): Communicator;
  /** Resolves once every rank has called barrier. */
  barrier(): Promise<void>;
  /**
   * Fails every pending and later collective with `reason` (a heartbeat watcher found a rank hung or dead:
   * health/), so no rank waits out the collective timeout; close() is still needed to release.
   */
  abort(reason: string): void;
  /** Releases sockets and servers; the communicator cannot be used afterwards. */
  close(): Promise<void>;
}

/**
 * The chunk [start, end) of rank r when n elements are split over `size` ranks: the first n % size ranks get
 * one element more (torch's tensor_split convention), so chunks differ in length by at most one.
 */
export function chunkBounds(n: number, size: number, r: number): [number, number] {
  const base = Math.floor(n / size);
  const extra = n % size;
  const start = r * base + Math.min(r, extra);
  return [start, start + base + (r < extra ? 1 : 0)];
}
