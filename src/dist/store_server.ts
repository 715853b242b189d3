// store_server.ts: the host side of the TCP key-value store (torch's TCPStore master), run by rank 0 on
// MASTER_ADDR:MASTER_PORT. It keeps string values by key, answers a get only once its key exists, and adds
// to counters atomically (one event loop serialises requests). Timeouts are the clients' business: the
// server holds a waiting get until its key is set or its connection closes. Protocol: frames.ts frames
// with JSON headers { id, op: "set" | "get" | "add", key, value?, delta? }, replies { id, value } or { id, error }.

import net from "node:net";
import { encodeFrame, FrameDecoder } from "./frames.js";

export class StoreServer {
  private readonly values = new Map<string, string>();
  /** Gets waiting for a key that is not set yet: the asking connection and its request id. */
  private readonly waiting = new Map<string, { socket: net.Socket; id: number }[]>();
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {
    server.on("connection", (socket) => this.serve(socket));
  }

  /** Listens on host:port; a port in use or an address not of this host is an error that says so. */
  static async listen(host: string, port: number, rank: number): Promise<StoreServer> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        const where = `rank ${rank} cannot host the TCP store on ${host}:${port}`;
        if (err.code === "EADDRINUSE") reject(new Error(`${where}: the port is in use (EADDRINUSE); choose a free MASTER_PORT or stop what holds it`));
        else if (err.code === "EADDRNOTAVAIL") reject(new Error(`${where}: ${host} is not an address of this host (EADDRNOTAVAIL); check MASTER_ADDR`));
        else reject(new Error(`${where}: ${err.message}`));
      });
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
    server.removeAllListeners("error");
    server.on("error", () => {}); // NOTE: after listen, errors surface on the connections, not here.
    return new StoreServer(server);
  }

  /** The port it listens on (the one asked for, or the one the system chose for port 0). */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops listening and ends every connection (their pending gets fail on the clients' side). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    const decoder = new FrameDecoder();
    socket.on("error", () => {}); // a client killed mid-request: its close below cleans up.
    socket.on("close", () => {
      this.sockets.delete(socket);
      for (const [key, list] of this.waiting) this.waiting.set(key, list.filter((w) => w.socket !== socket));
    });
    socket.on("data", (chunk) => {
      for (const { header } of decoder.push(chunk)) this.handle(socket, header);
    });
  }

  private handle(socket: net.Socket, req: Record<string, unknown>): void {
    const { id, op, key } = req as { id: number; op: string; key: string };
    const reply = (body: Record<string, unknown>): void => {
      if (!socket.destroyed) socket.write(encodeFrame({ id, ...body }));
    };
    if (typeof key !== "string") return reply({ error: `store request ${op} has no string key` });
    switch (op) {
      case "set":
        this.put(key, String(req.value));
        return reply({ value: null });
      case "get": {
        const value = this.values.get(key);
        if (value !== undefined) return reply({ value });
        const list = this.waiting.get(key) ?? [];
        list.push({ socket, id });
        this.waiting.set(key, list);
        return;
      }
      case "add": {
        const now = Number(this.values.get(key) ?? "0") + Number(req.delta);
        this.put(key, String(now));
        return reply({ value: String(now) });
      }
      default:
        return reply({ error: `unknown store op ${JSON.stringify(op)}` });
    }
  }

  private put(key: string, value: string): void {
    this.values.set(key, value);
    for (const w of this.waiting.get(key) ?? []) if (!w.socket.destroyed) w.socket.write(encodeFrame({ id: w.id, value }));
    this.waiting.delete(key);
  }
}
