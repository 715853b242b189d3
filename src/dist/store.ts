// store.ts: the TCP key-value store every rank uses to rendezvous, as torch's TCPStore: rank 0 hosts it
// (store_server.ts) on MASTER_ADDR:MASTER_PORT and every rank, rank 0 included, connects as a client.
// set/get (get waits until the key exists, up to a timeout), add (an atomic counter) and a barrier built
// on add + get. It carries small strings (ports, ids, counts), never tensors. Errors name the key, the
// rank and how long it waited.

import net from "node:net";
import { encodeFrame, FrameDecoder } from "./frames.js";
import { StoreServer } from "./store_server.js";

export interface StoreOptions {
  readonly rank: number;
  readonly size: number;
  /** MASTER_ADDR: where rank 0 hosts the store. */
  readonly host: string;
  /** MASTER_PORT. */
  readonly port: number;
  /** How long a get, a barrier, or connecting to the host may wait (ms). */
  readonly timeoutMs: number;
}

/** NOTE: a rank may start before rank 0 listens (processes start in any order), so connecting retries
 *  every RETRY_MS until timeoutMs has passed; then it fails naming the address and the tries. */
const RETRY_MS = 100;

export class TCPStore {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  private readonly barriers = new Map<string, number>();
  private closedReason: string | undefined;

  private constructor(
    readonly options: StoreOptions,
    private readonly socket: net.Socket,
    private readonly server: StoreServer | undefined,
  ) {
    const decoder = new FrameDecoder();
    socket.on("data", (chunk) => {
      for (const { header } of decoder.push(chunk)) {
        const p = this.pending.get(header.id as number);
        if (!p) continue; // the answer to a get that already timed out
        this.pending.delete(header.id as number);
        if (typeof header.error === "string") p.reject(new Error(`rank ${options.rank}: TCP store: ${header.error}`));
        else p.resolve(header.value as string);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closedReason ??= `rank ${options.rank}: the connection to the TCP store at ${options.host}:${options.port} closed (did rank 0 exit?)`;
      for (const p of this.pending.values()) p.reject(new Error(this.closedReason));
      this.pending.clear();
    });
  }

  /** Rank 0 starts the server first; then every rank connects (retrying while the host is not up yet). */
  static async create(options: StoreOptions): Promise<TCPStore> {
    const { rank, host, port, timeoutMs } = options;
    const server = rank === 0 ? await StoreServer.listen(host, port, rank) : undefined;
    try {
      return new TCPStore(options, await connectWithRetry(host, port, rank, timeoutMs), server);
    } catch (err) {
      await server?.close();
      throw err;
    }
  }

  async set(key: string, value: string): Promise<void> {
    await this.request({ op: "set", key, value }, undefined);
  }

  /** The value of `key`, waiting until some rank sets it; fails after timeoutMs naming the key and the rank. */
  get(key: string, timeoutMs = this.options.timeoutMs): Promise<string> {
    return this.request({ op: "get", key }, timeoutMs);
  }

  /** Adds `delta` to the counter `key` (0 when unset) atomically and returns the new count. */
  async add(key: string, delta: number): Promise<number> {
    return Number(await this.request({ op: "add", key, delta }, undefined));
  }

  /** Waits until all `size` ranks have reached the barrier of this name (each name counts its own rounds). */
  async barrier(name = "barrier", timeoutMs = this.options.timeoutMs): Promise<void> {
    const round = this.barriers.get(name) ?? 0;
    this.barriers.set(name, round + 1);
    const key = `barrier/${name}/${round}`;
    const arrived = await this.add(`${key}/count`, 1);
    if (arrived === this.options.size) await this.set(`${key}/done`, "1");
    try {
      await this.get(`${key}/done`, timeoutMs);
    } catch (err) {
      if (this.closedReason) throw err;
      const count = await this.add(`${key}/count`, 0);
      throw new Error(`rank ${this.options.rank}: store barrier "${name}" (round ${round}) timed out after ${timeoutMs} ms: ${count} of ${this.options.size} ranks arrived`);
    }
  }

  /** Closes this rank's connection; on rank 0 also the server (other ranks' requests then fail). */
  async close(): Promise<void> {
    this.closedReason ??= `rank ${this.options.rank}: the TCP store client is closed`;
    this.socket.destroy();
    await this.server?.close();
  }

  private request(body: Record<string, unknown>, timeoutMs: number | undefined): Promise<string> {
    if (this.closedReason) return Promise.reject(new Error(this.closedReason));
    const id = this.nextId++;
    const started = Date.now();
    return new Promise<string>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.pending.delete(id);
              reject(new Error(`rank ${this.options.rank}: TCP store get of key "${String(body.key)}" timed out after ${Date.now() - started} ms (timeout ${timeoutMs} ms): no rank set it`));
            }, timeoutMs);
      const done = <T>(f: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        f(v);
      };
      this.pending.set(id, { resolve: done(resolve), reject: done(reject) });
      this.socket.write(encodeFrame({ id, ...body }));
    });
  }
}

async function connectWithRetry(host: string, port: number, rank: number, timeoutMs: number): Promise<net.Socket> {
  const started = Date.now();
  let tries = 0;
  for (;;) {
    tries++;
    const result = await new Promise<net.Socket | Error>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once("connect", () => {
        socket.removeAllListeners("error");
        socket.setNoDelay(true);
        resolve(socket);
      });
      socket.once("error", (err) => {
        socket.destroy();
        resolve(err);
      });
    });
    if (!(result instanceof Error)) return result;
    const waited = Date.now() - started;
    if (waited + RETRY_MS > timeoutMs) {
      throw new Error(`rank ${rank} could not reach the TCP store at ${host}:${port}: ${tries} tries over ${waited} ms (timeout ${timeoutMs} ms), last error: ${result.message}`);
    }
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}
