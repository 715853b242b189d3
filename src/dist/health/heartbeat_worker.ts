// heartbeat_worker.ts: one rank's heartbeat and watcher, on a worker thread. Rank 0's thread also hosts
// the health store (store_server.ts on a port of its own, not the rendezvous store, which rank 0's main
// thread serves and which goes quiet while that thread computes a step). Every interval each rank's
// thread bumps its counter there (hb/<rank>) and reads every rank's (a store `add` of 0 reads a counter
// without waiting), and silence.ts judges the readings. It posts to the main thread (heartbeat.ts):
// "listening" (rank 0: the health store's port), "ready" after its first beat went through, "silent" for a
// rank whose counter stood still (rank 0 too when the health store stopped answering), "store" when
// its connection closed. It owns no training and no collectives.
// NOTE: a worker thread beats while the main thread computes a step (a timer on the main thread would
// stall with it and make a busy rank look hung); so a beat says "this process runs and is scheduled",
// which SIGSTOP, kill -9 and a frozen host all stop. A main thread stuck forever in its own code is the
// collectives' timeout's to find.

import net from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import { encodeFrame, FrameDecoder } from "../frames.js";
import { StoreServer } from "../store_server.js";
import { LEFT, SilenceWatch } from "./silence.js";

export interface HeartbeatConfig {
  /** Where the health store is (MASTER_ADDR); rank 0 listens there. */
  readonly host: string;
  /** The health store's port; rank 0 passes 0 and hosts it on a port the system picks. */
  readonly port: number;
  readonly rank: number;
  readonly size: number;
  readonly intervalMs: number;
  readonly limitMs: number;
}

export type HeartbeatMessage =
  | { readonly kind: "listening"; readonly port: number }
  | { readonly kind: "ready" }
  /** beats -1: rank 0 as the store's host (the store stopped answering). */
  | { readonly kind: "silent"; readonly rank: number; readonly silentMs: number; readonly beats: number }
  | { readonly kind: "store"; readonly reason: string };

const cfg = workerData as HeartbeatConfig;
const post = (m: HeartbeatMessage) => parentPort!.postMessage(m);
const watch = new SilenceWatch(cfg.size, cfg.rank, cfg.limitMs, cfg.intervalMs);
const key = (r: number) => `hb/${r}`;

let nextId = 1;
const pending = new Map<number, (value: number) => void>();
let storeDown = false;
// NOTE: a top-level await: a failure to listen is this thread's error, which heartbeat.ts reports.
const server = cfg.rank === 0 ? await StoreServer.listen(cfg.host, cfg.port, 0) : undefined;
const port = server?.port ?? cfg.port;
if (server) post({ kind: "listening", port });
const socket = net.connect({ host: cfg.host, port });
socket.setNoDelay(true);
const decoder = new FrameDecoder();
socket.on("data", (chunk) => {
  for (const { header } of decoder.push(chunk)) {
    const done = pending.get(header.id as number);
    pending.delete(header.id as number);
    done?.(Number(header.value));
  }
});
const lost = (reason: string) => {
  if (storeDown) return;
  storeDown = true;
  clearInterval(timer);
  post({ kind: "store", reason });
};
socket.on("error", (err) => lost(`the heartbeat connection to the health store at ${cfg.host}:${port} failed: ${err.message}`));
socket.on("close", () => lost(`the health store at ${cfg.host}:${port} closed the heartbeat connection (did rank 0 exit?)`));

function add(k: string, delta: number): Promise<number> {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    socket.write(encodeFrame({ id, op: "add", key: k, delta }));
  });
}

let round: { started: number } | undefined;
let ready = false;

/** One round: beat, then read every counter (answers come in order, so the reading follows the beat). */
async function beat(): Promise<void> {
  if (storeDown) return;
  if (round) {
    // NOTE: the health store is rank 0's thread's: a round unanswered for longer than the limit means rank
    // 0's process is not running (stopped, dead, its host frozen).
    const waited = Date.now() - round.started;
    if (waited > cfg.limitMs && cfg.rank !== 0) {
      storeDown = true;
      clearInterval(timer);
      post({ kind: "silent", rank: 0, silentMs: waited, beats: -1 });
    }
    return;
  }
  round = { started: Date.now() };
  const beats = add(key(cfg.rank), 1);
  const counts = await Promise.all([...Array(cfg.size).keys()].map((r) => (r === cfg.rank ? beats : add(key(r), 0))));
  round = undefined;
  if (!ready) {
    ready = true;
    post({ kind: "ready" });
  }
  for (const s of watch.observe(Date.now(), counts)) post({ kind: "silent", ...s });
}

const timer = setInterval(() => void beat(), cfg.intervalMs);
void beat();

parentPort!.on("message", (m: { kind: "leave" }) => {
  if (m.kind !== "leave") return;
  // A last count past LEFT: the watchers then know this rank left on purpose and stop judging it.
  clearInterval(timer);
  // NOTE: rank 0 keeps serving the health store until its thread is terminated (others may still beat).
  if (storeDown) return void parentPort!.postMessage({ kind: "left" });
  void add(key(cfg.rank), LEFT).then(() => parentPort!.postMessage({ kind: "left" }));
});
