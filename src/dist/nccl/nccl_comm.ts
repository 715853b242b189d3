// nccl_comm.ts: the `nccl` communicator: one process per GPU, collectives run by NCCL on a stream of this
// rank's GPU, rendezvous through the TCP store (nccl_rendezvous.ts: every rank says NCCL opened, the leader's
// unique id goes round as base64). The Communicator interface takes host Float32Arrays, so each call
// stages through device memory (nccl_device.ts: copy in, collective, copy out, all on the stream);
// deviceCollective and deviceSendRecv run on device buffers of the cuda backend as they are.
//
// NOTE: completion is polled (streamQuery between event-loop turns) rather than synchronized, so a collective
// that never finishes stays abortable (abort() from the heartbeat watcher, ncclCommAbort) and times out
// naming itself, and rank 0 keeps serving the store meanwhile. Calls of all the process's communicators take
// turns in one queue: one stream, one set of staging buffers, and NCCL's rule that every rank issues the
// same calls in the same order.
// NOTE: send resolves when NCCL has delivered (as torch's NCCL send): two ranks that both send before they
// receive wait for each other, where the local communicator buffers. Each send is a length then the data,
// since recv does not know the length.
// NOTE: a group's NCCL communicator is made on its first call (group() cannot wait), by the same store
// exchange; ncclCommInitRank then blocks its rank's thread. If world rank 0, whose thread serves the store,
// blocks in one group's init while ranks of another group still need the store for theirs, both wait:
// make every rank call its groups' first collectives in the same order (as NCCL asks anyway).
// NOTE: never run on a GPU so far (no GPU where it was written): compile and error paths are tested.

import { chunkBounds, type Communicator, type ReduceOp } from "../comm.js";
import type { Handle, NcclCollectiveKind, NcclDevice } from "./nccl_device.js";
import { Staging } from "./nccl_device.js";
import { exchangeUniqueId, type RendezvousStore } from "./nccl_rendezvous.js";
import { NCCL_DATA_TYPES, NCCL_TYPE_BYTES, ncclDataType, ncclRedOp, type NcclDType, type NcclReduceOp } from "./nccl_types.js";

const F32 = NCCL_DATA_TYPES.f32;
const I64 = NCCL_DATA_TYPES.i64;

/** What every communicator of this process shares: the device, one stream, staging memory, the queue. */
export class NcclProcess {
  readonly stream: Handle;
  readonly staging: Staging;
  /** Every NCCL communicator made so far that is still alive (aborted or destroyed ones leave it). */
  readonly comms = new Set<Handle>();
  abortReason: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly device: NcclDevice, readonly store: RendezvousStore & { close(): Promise<void> }, readonly worldRank: number, readonly timeoutMs: number) {
    this.stream = device.streamCreate();
    this.staging = new Staging(device);
  }

  /** Runs `body` after every earlier call has settled. */
  turn<T>(body: () => Promise<T>): Promise<T> {
    const run = this.queue.then(body, body);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Waits (yielding) until the stream is idle; fails on abort, on NCCL's asynchronous error, or after timeoutMs. */
  async drain(what: string, comm: Handle | undefined): Promise<void> {
    const started = Date.now();
    for (let polls = 0; ; polls++) {
      if (this.abortReason) throw new Error(`${what} on rank ${this.worldRank}: aborted: ${this.abortReason}`);
      let done: boolean;
      try {
        done = this.device.streamQuery(this.stream);
      } catch (err) {
        throw new Error(`${what} on rank ${this.worldRank}: ${(err as Error).message}`, { cause: err });
      }
      if (done) return;
      const err = comm === undefined ? "" : this.device.ncclCommAsyncError(comm);
      if (err) {
        this.abort(`NCCL reported ${err} during ${what}`);
        throw new Error(`${what} on rank ${this.worldRank}: ${err}; the NCCL communicators are aborted`);
      }
      if (Date.now() - started > this.timeoutMs) {
        this.abort(`${what} did not finish within ${this.timeoutMs} ms`);
        throw new Error(`${what} on rank ${this.worldRank}: not finished after ${Date.now() - started} ms (timeout ${this.timeoutMs} ms): a rank is hung or dead, or called another collective; the NCCL communicators are aborted`);
      }
      // NOTE: setImmediate keeps latency low for short collectives; then 1 ms sleeps stop the spin.
      await new Promise((r) => (polls < 200 ? setImmediate(r) : setTimeout(r, 1)));
    }
  }

  abort(reason: string): void {
    this.abortReason ??= reason;
    for (const c of this.comms) {
      try {
        this.device.ncclCommAbort(c);
      } catch {
        // already broken: nothing more to stop
      }
    }
    this.comms.clear();
  }

  async close(): Promise<void> {
    await this.turn(async () => undefined);
    for (const c of this.comms) this.device.ncclCommDestroy(c);
    this.comms.clear();
    this.staging.free();
    this.device.streamDestroy(this.stream);
    await this.store.close();
  }
}

export class NcclCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  private handle: Promise<Handle> | undefined;
  private readonly groupsMade = new Map<string, number>();
  private seq = 0;
  private closed = false;

  constructor(
    private readonly proc: NcclProcess,
    /** World ranks of this communicator's ranks. */
    private readonly members: readonly number[],
    /** The store prefix of its rendezvous; the world's is "nccl/world". */
    private readonly key: string,
  ) {
    this.rank = members.indexOf(proc.worldRank);
    this.size = members.length;
  }

  /** The NCCL communicator, made on first use: unique id through the store, then ncclCommInitRank. */
  private comm(): Promise<Handle> {
    this.handle ??= (async () => {
      const { device, store, timeoutMs } = this.proc;
      const id = await exchangeUniqueId(store, this.rank, this.size, () => device.ncclUniqueId(), this.key, timeoutMs);
      const c = device.ncclCommInit(id, this.size, this.rank);
      this.proc.comms.add(c);
      return c;
    })();
    return this.handle;
  }

  /** Makes the NCCL communicator now (the world's, at creation: a failed init fails createCommunicator). */
  async init(): Promise<void> {
    await this.proc.turn(() => this.comm());
  }

  group(ranks: readonly number[]): Communicator {
    this.checkOpen("group");
    const ok = Array.isArray(ranks) && ranks.length > 0 && ranks.every((r, i) => Number.isInteger(r) && r >= 0 && r < this.size && (i === 0 || r > ranks[i - 1]!));
    if (!ok) throw new Error(`group on rank ${this.rank}: ranks must be ascending distinct ranks from 0 to ${this.size - 1}, got ${JSON.stringify(ranks)}`);
    if (!ranks.includes(this.rank)) throw new Error(`group on rank ${this.rank}: this rank is not in [${ranks.join(", ")}]; only a group's members make it`);
    const world = ranks.map((r) => this.members[r]!);
    const name = world.join(",");
    const ordinal = this.groupsMade.get(name) ?? 0;
    this.groupsMade.set(name, ordinal + 1);
    // NOTE: the parent's key in the name, so a group made twice over the same ranks from different parents
    // (the world, a mesh dimension) never shares store keys.
    return new NcclCommunicator(this.proc, world, `${this.key}/group[${name}]#${ordinal}`);
  }

  allReduce(data: Float32Array, op: ReduceOp = "sum"): Promise<Float32Array> {
    const what = this.begin("allReduce", data, op, ["sum", "max"]);
    return this.staged(what, data, data.byteLength, (c, s, r) => this.proc.device.ncclCollective("allReduce", c, this.proc.stream, s, r, data.length, F32, ncclRedOp(op)));
  }

  allGather(data: Float32Array): Promise<Float32Array> {
    const what = this.begin("allGather", data);
    return this.staged(what, data, data.byteLength * this.size, (c, s, r) => this.proc.device.ncclCollective("allGather", c, this.proc.stream, s, r, data.length, F32));
  }

  async reduceScatter(data: Float32Array, op: "sum" = "sum"): Promise<Float32Array> {
    const what = this.begin("reduceScatter", data, op, ["sum"]);
    // NOTE: NCCL's chunks are equal; comm.ts's differ by one where size does not divide n, so each rank's
    // chunk is placed in a slot of ceil(n / size) elements, zero-padded, and the padding dropped after.
    const n = data.length;
    const k = Math.ceil(n / this.size);
    let send = data;
    if (k * this.size !== n) {
      send = new Float32Array(k * this.size);
      for (let r = 0; r < this.size; r++) {
        const [a, b] = chunkBounds(n, this.size, r);
        send.set(data.subarray(a, b), r * k);
      }
    }
    const out = await this.staged(what, send, k * 4, (c, s, r) => this.proc.device.ncclCollective("reduceScatter", c, this.proc.stream, s, r, k, F32, ncclRedOp("sum")));
    const [a, b] = chunkBounds(n, this.size, this.rank);
    return out.subarray(0, b - a);
  }

  broadcast(data: Float32Array, root: number): Promise<Float32Array> {
    const what = this.begin("broadcast", data);
    this.checkRank(what, "root", root, true);
    return this.staged(what, data, data.byteLength, (c, s, r) => this.proc.device.ncclCollective("broadcast", c, this.proc.stream, s, r, data.length, F32, 0, root));
  }

  allToAll(data: Float32Array): Promise<Float32Array> {
    const what = this.begin("allToAll", data);
    if (data.length % this.size !== 0) throw new Error(`${what} on rank ${this.rank}: ${data.length} elements do not divide into ${this.size} equal chunks`);
    const k = data.length / this.size;
    const kb = BigInt(k * 4);
    return this.staged(what, data, data.byteLength, (c, s, r) => {
      const ops = [...Array(this.size).keys()].filter((p) => p !== this.rank).flatMap((p) => [
        { send: true, ptr: s + BigInt(p) * kb, count: k, dtype: F32, peer: p },
        { send: false, ptr: r + BigInt(p) * kb, count: k, dtype: F32, peer: p },
      ]);
      this.proc.device.copyDtoD(r + BigInt(this.rank) * kb, s + BigInt(this.rank) * kb, k * 4, this.proc.stream);
      if (ops.length > 0) this.proc.device.ncclSendRecv(c, this.proc.stream, ops);
    });
  }

  async barrier(): Promise<void> {
    await this.allReduce(new Float32Array(1));
  }

  async send(data: Float32Array, dst: number): Promise<void> {
    const what = this.begin(`send to rank ${dst}`, data);
    this.checkRank(what, "dst", dst, false);
    const length = new BigInt64Array([BigInt(data.length)]);
    await this.staged(what, length, 0, (c, s) => this.proc.device.ncclSendRecv(c, this.proc.stream, [{ send: true, ptr: s, count: 1, dtype: I64, peer: dst }]));
    if (data.length > 0) await this.staged(what, data, 0, (c, s) => this.proc.device.ncclSendRecv(c, this.proc.stream, [{ send: true, ptr: s, count: data.length, dtype: F32, peer: dst }]));
  }

  async recv(src: number): Promise<Float32Array> {
    const what = this.begin(`recv from rank ${src}`, new Float32Array(0));
    this.checkRank(what, "src", src, false);
    const head = await this.staged(what, new Float32Array(0), 8, (c, _s, r) => this.proc.device.ncclSendRecv(c, this.proc.stream, [{ send: false, ptr: r, count: 1, dtype: I64, peer: src }]));
    const n = Number(new BigInt64Array(head.buffer, head.byteOffset, 1)[0]);
    if (n === 0) return new Float32Array(0);
    return this.staged(what, new Float32Array(0), n * 4, (c, _s, r) => this.proc.device.ncclSendRecv(c, this.proc.stream, [{ send: false, ptr: r, count: n, dtype: F32, peer: src }]));
  }

  /**
   * A collective on device buffers (pointers of the cuda backend's buffers, on this rank's GPU), enqueued on
   * the communicator's stream; resolves once it finished. count as NCCL counts (allGather: per rank sent;
   * reduceScatter: per rank received).
   */
  deviceCollective(kind: NcclCollectiveKind, send: Handle, recv: Handle, count: number, dtype: NcclDType, op: NcclReduceOp = "sum", root = 0): Promise<void> {
    const what = `${kind} (device collective #${this.seq++})`;
    this.checkOpen(what);
    const [t, o] = [ncclDataType(dtype, what), ncclRedOp(op, what)];
    if (kind === "broadcast") this.checkRank(what, "root", root, true);
    return this.proc.turn(async () => {
      const c = await this.comm();
      this.proc.device.ncclCollective(kind, c, this.proc.stream, send, recv, count, t, o, root);
      await this.proc.drain(what, c);
    });
  }

  /** Sends and receives on device buffers in one NCCL group (an all-to-all is one per peer each way). */
  deviceSendRecv(ops: readonly { send: boolean; ptr: Handle; count: number; dtype: NcclDType; peer: number }[]): Promise<void> {
    const what = `send/recv group (device #${this.seq++})`;
    this.checkOpen(what);
    const coded = ops.map((o, i) => {
      this.checkRank(`${what}, op ${i}`, "peer", o.peer, false);
      return { ...o, dtype: ncclDataType(o.dtype, `${what}, op ${i}`) };
    });
    return this.proc.turn(async () => {
      const c = await this.comm();
      this.proc.device.ncclSendRecv(c, this.proc.stream, coded);
      await this.proc.drain(what, c);
    });
  }

  abort(reason: string): void {
    this.proc.abort(reason);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.key === "nccl/world") return this.proc.close();
    // A group: its own NCCL communicator goes; the world's stream, memory and store stay.
    const h = this.handle;
    if (!h) return;
    await this.proc.turn(async () => {
      const c = await h.catch(() => undefined);
      if (c !== undefined && this.proc.comms.delete(c)) this.proc.device.ncclCommDestroy(c);
    });
  }

  /**
   * One staged call: `input` copied to the device send buffer, `enqueue(comm, send, recv)` run, `outBytes`
   * of the recv buffer copied back; resolves with them as a new Float32Array once the stream is done.
   */
  private staged(what: string, input: ArrayBufferView, outBytes: number, enqueue: (comm: Handle, send: Handle, recv: Handle) => void): Promise<Float32Array> {
    return this.proc.turn(async () => {
      const c = await this.comm();
      const { device, stream, staging } = this.proc;
      const [s, r] = staging.deviceBuffers(Math.max(input.byteLength, outBytes, 8));
      device.copyHtoD(s, staging.pinnedIn(input), stream);
      enqueue(c, s, r);
      const out = staging.pinnedOut(outBytes);
      device.copyDtoH(out, r, stream);
      await this.proc.drain(what, c);
      return new Float32Array(out.slice().buffer, 0, outBytes >> 2);
    });
  }

  private begin(name: string, data: ArrayBufferView, op?: string, allowed?: readonly string[]): string {
    const what = `${name} (collective #${this.seq++}${this.key === "nccl/world" ? "" : ` in ${this.key}`})`;
    this.checkOpen(what);
    if (!(data instanceof Float32Array)) throw new Error(`${what}: expects a Float32Array, got ${Object.prototype.toString.call(data)}`);
    if (allowed && !allowed.includes(op!)) throw new Error(`${what}: op must be ${allowed.map((a) => `"${a}"`).join(" or ")}, got ${JSON.stringify(op)}`);
    return what;
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new Error(`${what} on rank ${this.rank}: the communicator is closed`);
    if (this.proc.abortReason) throw new Error(`${what} on rank ${this.rank}: the NCCL communicator was aborted: ${this.proc.abortReason}`);
  }

  private checkRank(what: string, name: string, r: number, selfOk: boolean): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size || (!selfOk && r === this.rank)) {
      throw new Error(`${what} on rank ${this.rank}: ${name} must be ${selfOk ? "a rank" : "another rank"} from 0 to ${this.size - 1}, got ${r}`);
    }
  }
}

/** Bytes of `count` elements of `dtype` (for callers sizing device buffers). */
export function ncclBytes(dtype: NcclDType, count: number): number {
  return NCCL_TYPE_BYTES[dtype] * count;
}
