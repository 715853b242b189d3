// peer_mesh.ts: the local communicator's transport: one TCP connection between every pair of ranks on this
// host, found through the store (each rank listens on a free loopback port and publishes it under
// local/port/<rank>; rank r connects to every lower rank and says who it is). Messages are frames.ts frames
// tagged by the caller; a received message waits in an inbox until its tag is asked for, so ranks may run
// ahead of each other. It knows nothing of collectives: local_comm.ts builds them from send and recv.

import net from "node:net";
import { encodeFrame, type Frame, FrameDecoder } from "../frames.js";
import type { TCPStore } from "../store.js";

interface Peer {
  readonly socket: net.Socket;
  /** Messages received before anyone asked for them, by tag. */
  readonly inbox: Map<string, Float32Array>;
  /** recv calls waiting for a tag. */
  readonly waiters: Map<string, { resolve: (a: Float32Array) => void; reject: (e: Error) => void }>;
  /** Why the connection is gone, once it is. */
  closed?: string;
}

export class PeerMesh {
  private constructor(
    readonly rank: number,
    readonly size: number,
    private readonly server: net.Server,
    private readonly peers: Map<number, Peer>,
  ) {}

  /** Connects this rank to every other rank; fails after timeoutMs naming the ranks that never connected. */
  static async connect(store: TCPStore, rank: number, size: number, timeoutMs: number): Promise<PeerMesh> {
    const peers = new Map<number, Peer>();
    const sockets = new Set<net.Socket>();
    let allIn: () => void = () => {};
    const whenAllIn = new Promise<void>((resolve) => (allIn = resolve));
    const adopt = (peerRank: number, socket: net.Socket, decoder: FrameDecoder, early: Frame[]): void => {
      const peer: Peer = { socket, inbox: new Map(), waiters: new Map() };
      peers.set(peerRank, peer);
      const deliver = ({ header, payload }: Frame): void => {
        // NOTE: copy into a fresh ArrayBuffer: the payload is a view into a socket buffer, maybe unaligned for f32.
        const data = new Float32Array(new Uint8Array(payload).buffer);
        const tag = header.tag as string;
        const w = peer.waiters.get(tag);
        if (w) {
          peer.waiters.delete(tag);
          w.resolve(data);
        } else peer.inbox.set(tag, data);
      };
      socket.removeAllListeners("data");
      socket.on("data", (chunk) => decoder.push(chunk).forEach(deliver));
      socket.on("close", () => {
        peer.closed ??= `rank ${peerRank}'s connection closed (did it exit or die?)`;
        for (const w of peer.waiters.values()) w.reject(new Error(peer.closed));
        peer.waiters.clear();
      });
      early.forEach(deliver);
      if (peers.size === size - 1) allIn();
    };

    // Higher ranks connect to us: their first frame says which rank they are.
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("error", () => {});
      const decoder = new FrameDecoder();
      socket.on("data", (chunk) => {
        const [hello, ...early] = decoder.push(chunk);
        if (!hello) return;
        const r = hello.header.hello;
        // NOTE: only a higher rank connects to us, once each; anything else is not one of this job's ranks.
        if (typeof r === "number" && Number.isInteger(r) && r > rank && r < size && !peers.has(r)) adopt(r, socket, decoder, early);
        else socket.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
    });
    const mesh = new PeerMesh(rank, size, server, peers);
    const started = Date.now();
    try {
      await store.set(`local/port/${rank}`, String((server.address() as net.AddressInfo).port));
      // We connect to lower ranks, once each has published its port.
      for (let r = 0; r < rank; r++) {
        const port = Number(await store.get(`local/port/${r}`, Math.max(1, timeoutMs - (Date.now() - started))));
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: "127.0.0.1", port }, () => resolve(s));
          s.once("error", (err) => reject(new Error(`rank ${rank} could not connect to rank ${r} on 127.0.0.1:${port}: ${err.message}`)));
        });
        sockets.add(socket);
        socket.setNoDelay(true);
        socket.removeAllListeners("error");
        socket.on("error", () => {});
        socket.write(encodeFrame({ hello: rank }));
        adopt(r, socket, new FrameDecoder(), []);
      }
      if (size === 1) allIn();
      let timer: NodeJS.Timeout | undefined;
      const left = Math.max(1, timeoutMs - (Date.now() - started));
      await Promise.race([
        whenAllIn,
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => {
            const missing = [...Array(size).keys()].filter((r) => r !== rank && !peers.has(r));
            reject(new Error(`local communicator rank ${rank}: rank(s) ${missing.join(", ")} did not connect within ${timeoutMs} ms`));
          }, left);
        }),
      ]).finally(() => clearTimeout(timer));
      return mesh;
    } catch (err) {
      for (const s of sockets) s.destroy();
      server.close();
      throw err;
    }
  }

  /** Queues `data` (copied) for rank `to` under `tag`; `what` (the collective) names a failure. */
  send(to: number, tag: string, data: Float32Array, what: string): void {
    const peer = this.peer(to);
    if (peer.closed) throw new Error(`${what} on rank ${this.rank}: cannot send to rank ${to}: ${peer.closed}`);
    peer.socket.write(encodeFrame({ tag }, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
  }

  /**
   * The message rank `from` sent under `tag`. Fails at `deadline` (a Date.now() value) with an error naming
   * `what` (the collective), the rank waited on and how long, so a hung rank is reported, not waited on forever.
   */
  recv(from: number, tag: string, deadline: number, what: string, timeoutMs: number): Promise<Float32Array> {
    const peer = this.peer(from);
    const ready = peer.inbox.get(tag);
    if (ready) {
      peer.inbox.delete(tag);
      return Promise.resolve(ready);
    }
    if (peer.closed) return Promise.reject(new Error(`${what} on rank ${this.rank}: ${peer.closed}`));
    return new Promise<Float32Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        peer.waiters.delete(tag);
        reject(new Error(`${what} on rank ${this.rank}: timed out after ${timeoutMs} ms waiting for rank ${from} (is it hung, dead, or not calling this collective?)`));
      }, Math.max(0, deadline - Date.now()));
      peer.waiters.set(tag, {
        resolve: (a) => (clearTimeout(timer), resolve(a)),
        reject: (e) => (clearTimeout(timer), reject(new Error(`${what} on rank ${this.rank}: ${e.message}`))),
      });
    });
  }

  /** Every peer counts as gone for `reason`: waiting receives fail now, later sends and receives at once. */
  abort(reason: string): void {
    for (const p of this.peers.values()) {
      p.closed ??= reason;
      for (const w of p.waiters.values()) w.reject(new Error(reason));
      p.waiters.clear();
    }
  }

  close(): Promise<void> {
    for (const p of this.peers.values()) {
      p.closed ??= `rank ${this.rank} closed its communicator`;
      p.socket.destroy();
    }
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private peer(r: number): Peer {
    const p = this.peers.get(r);
    if (!p) throw new Error(`rank ${this.rank} has no connection to rank ${r} (world size ${this.size})`);
    return p;
  }
}
