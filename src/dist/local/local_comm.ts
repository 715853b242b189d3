// local_comm.ts: the `local` communicator: ranks are OS processes on one host, connected pairwise over
// loopback TCP (peer_mesh.ts), rendezvous through the TCP store. What CI and development use; nccl
// replaces it across GPUs. Collectives are built from tagged sends and receives; every receive has a
// deadline, so a hung or dead rank turns into an error naming the collective, that rank and the time.
//
// NOTE: reductions are direct, not a ring: for reduce-scatter every rank sends chunk c (comm.ts chunkBounds)
// straight to rank c, and rank c sums the pieces in rank order, ((x0 + x1) + x2) + ..., in f32; all-reduce is
// that reduce-scatter followed by an all-gather of the reduced chunks. So every rank gets bit-identical
// results, and they equal a single process summing the ranks' arrays in rank order, whatever the world size's
// chunking. Each rank sends (size - 1)/size of its array per phase, the same bytes as a ring; on one host the
// size - 1 connections per rank cost nothing a ring would save.

import { chunkBounds, type Communicator, type ReduceOp } from "../comm.js";
import type { TCPStore } from "../store.js";
import { PeerMesh } from "./peer_mesh.js";

export class LocalCommunicator implements Communicator {
  /** Collectives called so far: tags carry it, so messages of different calls never mix. */
  private seq = 0;
  private readonly sent: number[];
  private readonly received: number[];
  private closed = false;
  /** Groups made from this communicator so far, by member list: their tags' ordinal. */
  private readonly groupsMade = new Map<string, number>();
  readonly rank: number;
  readonly size: number;

  private constructor(
    /** World ranks of this communicator's ranks: [0, 1, ..., n-1] for the world, a subset for a group. */
    private readonly members: readonly number[],
    /** Tags' prefix: "" for the world, the group's name for a group, so the groups' messages never mix. */
    private readonly prefix: string,
    private readonly timeoutMs: number,
    /** The world communicator's store, closed with it; a group's is undefined (it owns nothing). */
    private readonly store: TCPStore | undefined,
    private readonly mesh: PeerMesh,
  ) {
    this.rank = members.indexOf(mesh.rank);
    this.size = members.length;
    this.sent = new Array<number>(this.size).fill(0);
    this.received = new Array<number>(this.size).fill(0);
  }

  /** Connects to every other rank through `store` (which this communicator then owns and closes). */
  static async create(store: TCPStore, rank: number, size: number, timeoutMs: number): Promise<LocalCommunicator> {
    const mesh = await PeerMesh.connect(store, rank, size, timeoutMs);
    return new LocalCommunicator([...Array(size).keys()], "", timeoutMs, store, mesh);
  }

  group(ranks: readonly number[]): Communicator {
    this.checkOpen("group");
    const ok = Array.isArray(ranks) && ranks.length > 0 && ranks.every((r, i) => Number.isInteger(r) && r >= 0 && r < this.size && (i === 0 || r > ranks[i - 1]!));
    if (!ok) throw new Error(`group on rank ${this.rank}: ranks must be ascending distinct ranks from 0 to ${this.size - 1}, got ${JSON.stringify(ranks)}`);
    if (!ranks.includes(this.rank)) throw new Error(`group on rank ${this.rank}: this rank is not in [${ranks.join(", ")}]; only a group's members make it`);
    const key = ranks.join(",");
    const ordinal = this.groupsMade.get(key) ?? 0;
    this.groupsMade.set(key, ordinal + 1);
    const world = ranks.map((r) => this.members[r]!);
    return new LocalCommunicator(world, `${this.prefix}[${world.join(",")}]#${ordinal}/`, this.timeoutMs, undefined, this.mesh);
  }

  async allReduce(data: Float32Array, op: ReduceOp = "sum"): Promise<Float32Array> {
    const c = this.begin("allReduce", data);
    checkOp(c.what, op, ["sum", "max"]);
    const mine = await this.reduceChunks(c, data, op, "rs");
    return this.gatherChunks(c, mine, data.length, "ag");
  }

  async allGather(data: Float32Array): Promise<Float32Array> {
    const c = this.begin("allGather", data);
    const n = data.length;
    const out = new Float32Array(n * this.size);
    out.set(data, this.rank * n);
    for (let r = 0; r < this.size; r++) if (r !== this.rank) this.sendTo(r, c.tag("ag"), data, c.what);
    await Promise.all(
      this.others().map(async (r) => out.set(expectLength(c.what, r, await this.recvIn(c, r, "ag"), n), r * n)),
    );
    return out;
  }

  async reduceScatter(data: Float32Array, op: "sum" = "sum"): Promise<Float32Array> {
    const c = this.begin("reduceScatter", data);
    checkOp(c.what, op, ["sum"]);
    return this.reduceChunks(c, data, op, "rs");
  }

  async broadcast(data: Float32Array, root: number): Promise<Float32Array> {
    const c = this.begin("broadcast", data);
    this.checkRank(c.what, "root", root, true);
    if (this.rank === root) {
      for (const r of this.others()) this.sendTo(r, c.tag("bc"), data, c.what);
      return data.slice();
    }
    return expectLength(c.what, root, await this.recvIn(c, root, "bc"), data.length);
  }

  async send(data: Float32Array, dst: number): Promise<void> {
    this.checkOpen("send");
    checkArray("send", data);
    this.checkRank("send", "dst", dst, false);
    this.sendTo(dst, `${this.prefix}p2p:${this.sent[dst]!++}`, data, `send to rank ${dst}`);
  }

  async recv(src: number): Promise<Float32Array> {
    this.checkOpen("recv");
    this.checkRank("recv", "src", src, false);
    const what = `recv from rank ${src}`;
    return this.mesh.recv(this.members[src]!, `${this.prefix}p2p:${this.received[src]!++}`, Date.now() + this.timeoutMs, what, this.timeoutMs);
  }

  async allToAll(data: Float32Array): Promise<Float32Array> {
    const c = this.begin("allToAll", data);
    if (data.length % this.size !== 0) throw new Error(`${c.what} on rank ${this.rank}: ${data.length} elements do not divide into ${this.size} equal chunks`);
    const k = data.length / this.size;
    const out = new Float32Array(data.length);
    out.set(data.subarray(this.rank * k, (this.rank + 1) * k), this.rank * k);
    for (const r of this.others()) this.sendTo(r, c.tag("a2a"), data.subarray(r * k, (r + 1) * k), c.what);
    await Promise.all(this.others().map(async (r) => out.set(expectLength(c.what, r, await this.recvIn(c, r, "a2a"), k), r * k)));
    return out;
  }

  async barrier(): Promise<void> {
    const c = this.begin("barrier", new Float32Array(0));
    for (const r of this.others()) this.sendTo(r, c.tag("b"), new Float32Array(0), c.what);
    await Promise.all(this.others().map((r) => this.recvIn(c, r, "b")));
  }

  abort(reason: string): void {
    this.mesh.abort(reason);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.store) return; // a group: the world communicator owns the connections
    await this.mesh.close();
    await this.store.close();
  }

  /** Rank r's chunk of the reduction arrives at r from every rank; this rank returns its own, summed in rank order. */
  private async reduceChunks(c: Call, data: Float32Array, op: ReduceOp, step: string): Promise<Float32Array> {
    const n = data.length;
    for (const r of this.others()) this.sendTo(r, c.tag(step), data.subarray(...chunkBounds(n, this.size, r)), c.what);
    const [start, end] = chunkBounds(n, this.size, this.rank);
    const parts = await Promise.all(
      [...Array(this.size).keys()].map(async (r) =>
        r === this.rank ? data.subarray(start, end) : expectLength(c.what, r, await this.recvIn(c, r, step), end - start),
      ),
    );
    const out = parts[0]!.slice();
    for (let r = 1; r < this.size; r++) {
      const p = parts[r]!;
      if (op === "sum") for (let i = 0; i < out.length; i++) out[i] = out[i]! + p[i]!;
      else for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i]!, p[i]!);
    }
    return out;
  }

  /** Every rank's chunk (rank r holds chunk r of n elements) assembled into the whole array on every rank. */
  private async gatherChunks(c: Call, mine: Float32Array, n: number, step: string): Promise<Float32Array> {
    const out = new Float32Array(n);
    out.set(mine, chunkBounds(n, this.size, this.rank)[0]);
    for (const r of this.others()) this.sendTo(r, c.tag(step), mine, c.what);
    await Promise.all(
      this.others().map(async (r) => {
        const [start, end] = chunkBounds(n, this.size, r);
        out.set(expectLength(c.what, r, await this.recvIn(c, r, step), end - start), start);
      }),
    );
    return out;
  }

  private begin(name: string, data: Float32Array): Call {
    this.checkOpen(name);
    checkArray(name, data);
    const seq = this.seq++;
    const where = this.prefix ? ` in group ${this.prefix.slice(0, -1)}` : "";
    return { what: `${name} (collective #${seq}${where})`, tag: (step) => `${this.prefix}${seq}:${name}:${step}`, deadline: Date.now() + this.timeoutMs };
  }

  /** Sends to this communicator's rank r (the mesh knows world ranks). */
  private sendTo(r: number, tag: string, data: Float32Array, what: string): void {
    this.mesh.send(this.members[r]!, tag, data, what);
  }

  private recvIn(c: Call, from: number, step: string): Promise<Float32Array> {
    return this.mesh.recv(this.members[from]!, c.tag(step), c.deadline, c.what, this.timeoutMs);
  }

  private others(): number[] {
    return [...Array(this.size).keys()].filter((r) => r !== this.rank);
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new Error(`${what} on rank ${this.rank}: the communicator is closed`);
  }

  private checkRank(what: string, name: string, r: number, selfOk: boolean): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size || (!selfOk && r === this.rank)) {
      throw new Error(`${what} on rank ${this.rank}: ${name} must be ${selfOk ? "a rank" : "another rank"} from 0 to ${this.size - 1}, got ${r}`);
    }
  }
}

/** One collective call: its name for errors, its message tags, and when it gives up. */
interface Call {
  readonly what: string;
  readonly tag: (step: string) => string;
  readonly deadline: number;
}

function checkArray(what: string, data: unknown): void {
  if (!(data instanceof Float32Array)) throw new Error(`${what}: expects a Float32Array, got ${Object.prototype.toString.call(data)}`);
}

function checkOp(what: string, op: string, allowed: readonly string[]): void {
  if (!allowed.includes(op)) throw new Error(`${what}: op must be ${allowed.map((a) => `"${a}"`).join(" or ")}, got ${JSON.stringify(op)}`);
}

function expectLength(what: string, from: number, got: Float32Array, want: number): Float32Array {
  if (got.length !== want) {
    throw new Error(`${what}: rank ${from} sent ${got.length} elements where ${want} were expected (do all ranks pass arrays of the same length?)`);
  }
  return got;
}
