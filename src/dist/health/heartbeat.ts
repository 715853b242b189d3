// heartbeat.ts: a rank's heartbeats, from the main thread's side: starts heartbeat_worker.ts on a worker
// thread (beats go on while a step computes; rank 0's thread hosts the health store the others beat to,
// on the port it reports here for the caller to hand round), waits for its first beat, and
// turns what the worker reports into one callback: which rank went silent and for how long, or that the
// store went away. Reacting (aborting the collectives, exiting) is the caller's. Defaults and the
// environment that tunes them (KILN_HEARTBEAT_INTERVAL_MS, KILN_HEARTBEAT_TIMEOUT_MS) live here too.

import { startDistWorker } from "../worker_boot.js";
import type { HeartbeatConfig, HeartbeatMessage } from "./heartbeat_worker.js";

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 500;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5000;

/** What went wrong, as the worker saw it: a silent rank (rank 0 also when the store stopped answering), or the store closed. */
export type HealthFault =
  | { readonly kind: "silent"; readonly rank: number; readonly silentMs: number; readonly limitMs: number }
  | { readonly kind: "store"; readonly reason: string };

export interface Heartbeat {
  /** The health store's port (rank 0's thread hosts it; the other ranks pass it to their startHeartbeat). */
  readonly port: number;
  /** Says this rank leaves on purpose (so no watcher calls it silent), then stops the thread. */
  stop(): Promise<void>;
}

/** The interval and silence limit from the environment (ms), checked; defaults 500 ms and 5 s. */
export function heartbeatTiming(env: Readonly<Record<string, string | undefined>> = process.env): { intervalMs: number; limitMs: number } {
  const read = (name: string, fallback: number) => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new Error(`${name}=${JSON.stringify(text)} is not a whole number of milliseconds >= 1`);
    return Number(text);
  };
  const intervalMs = read("KILN_HEARTBEAT_INTERVAL_MS", DEFAULT_HEARTBEAT_INTERVAL_MS);
  const limitMs = read("KILN_HEARTBEAT_TIMEOUT_MS", DEFAULT_HEARTBEAT_TIMEOUT_MS);
  if (intervalMs * 2 > limitMs) throw new Error(`KILN_HEARTBEAT_TIMEOUT_MS (${limitMs}) must be at least twice KILN_HEARTBEAT_INTERVAL_MS (${intervalMs})`);
  return { intervalMs, limitMs };
}

/** Starts the heartbeat thread (rank 0: port 0, it hosts); resolves once its first beat reached the health store (fails after `startMs`). */
export async function startHeartbeat(cfg: HeartbeatConfig, onFault: (f: HealthFault) => void, startMs = 30_000): Promise<Heartbeat> {
  const worker = startDistWorker(import.meta.url, "heartbeat_worker", cfg);
  let started = false;
  let port = cfg.port;
  let left: () => void = () => {};
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rank ${cfg.rank}: the heartbeat thread made no beat within ${startMs} ms`)), startMs);
    worker.on("message", (m: HeartbeatMessage | { kind: "left" }) => {
      if (m.kind === "listening") port = m.port;
      else if (m.kind === "ready") {
        started = true;
        clearTimeout(timer);
        resolve();
      } else if (m.kind === "left") left();
      else if (m.kind === "silent") onFault({ kind: "silent", rank: m.rank, silentMs: m.silentMs, limitMs: cfg.limitMs });
      else if (started) onFault(m);
      else reject(new Error(`rank ${cfg.rank}: heartbeats could not start: ${m.reason}`));
    });
    worker.on("error", (err) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`rank ${cfg.rank}: the heartbeat thread failed: ${err.message}`));
      else onFault({ kind: "store", reason: `the heartbeat thread failed: ${err.message}` });
    });
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  return {
    port,
    async stop() {
      // NOTE: the leaving beat is best effort (the store may be gone already); 1 s, then the thread ends anyway.
      await new Promise<void>((resolve) => {
        left = resolve;
        setTimeout(resolve, 1000).unref();
        worker.postMessage({ kind: "leave" });
      });
      await worker.terminate();
    },
  };
}
