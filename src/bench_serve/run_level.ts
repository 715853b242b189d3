// run_level.ts: one load level of `kiln bench serve`: closed loop (C workers, each sending its next
// request as soon as its last one ends) or open loop (requests sent at seeded Poisson arrival times,
// whatever is still in flight). A level stops issuing after its request count or its duration, whichever
// comes first, or when the run is stopped, and ends when every request it sent has ended (each is
// bounded by its own timeout). It owns the scheduling; a request is the `send` callback.

import { setTimeout as sleep } from "node:timers/promises";
import { assertNever } from "../core/ops.js";
import { PoissonArrivals } from "./arrivals.js";
import type { RequestResult } from "./request.js";

export type LoadShape =
  | { readonly mode: "concurrency"; readonly concurrency: number }
  | { readonly mode: "rate"; readonly rate: number };

export interface LevelLimits {
  /** Most requests to send (always set: the caller caps a duration-only level too). */
  readonly requests: number;
  /** Stop sending new requests after this long; undefined = until `requests` are sent. */
  readonly durationMs?: number;
}

/** Sends request `index` and measures it; never rejects (request.ts turns failures into results). */
export type Send = (index: number, levelStart: number) => Promise<RequestResult>;

export interface LevelRun {
  readonly shape: LoadShape;
  /** In index order, one per request sent. */
  readonly results: readonly RequestResult[];
  /** From the level's start to the end of its last request. */
  readonly elapsedMs: number;
}

export interface LevelHooks {
  /** Stops sending at once; requests in flight are aborted by the signal `send` closes over. */
  readonly signal?: AbortSignal;
  readonly onResult?: (r: RequestResult) => void;
  /** Seed of the arrival times (open loop). */
  readonly seed?: number;
}

export async function runLevel(shape: LoadShape, limits: LevelLimits, send: Send, hooks: LevelHooks = {}): Promise<LevelRun> {
  const start = performance.now();
  const results: RequestResult[] = [];
  const track = async (index: number) => {
    const r = await send(index, start);
    results[index] = r;
    hooks.onResult?.(r);
  };
  const timeUp = () => limits.durationMs !== undefined && performance.now() - start >= limits.durationMs;
  const stopped = () => hooks.signal?.aborted === true;
  switch (shape.mode) {
    case "concurrency": {
      let issued = 0;
      const worker = async () => {
        while (issued < limits.requests && !timeUp() && !stopped()) await track(issued++);
      };
      await Promise.all(Array.from({ length: Math.min(shape.concurrency, limits.requests) }, worker));
      break;
    }
    case "rate": {
      const arrivals = new PoissonArrivals(hooks.seed ?? 0, shape.rate);
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < limits.requests && !stopped(); i++) {
        const atMs = arrivals.next() * 1000;
        if (limits.durationMs !== undefined && atMs >= limits.durationMs) break;
        // Node's timers count whole milliseconds and may fire up to 1 ms early; sleep again until the
        // arrival time has really passed, so no request is sent before its schedule.
        for (let wait = start + atMs - performance.now(); wait > 0 && !stopped(); wait = start + atMs - performance.now()) {
          await sleep(Math.max(1, Math.ceil(wait)), undefined, hooks.signal ? { signal: hooks.signal } : {}).catch(() => {});
        }
        if (stopped()) break;
        inflight.push(track(i));
      }
      await Promise.all(inflight);
      break;
    }
    default:
      assertNever(shape, "load shape");
  }
  // NOTE: a loop, not Math.max(...): a long level has more results than a call takes arguments.
  let elapsedMs = 0;
  for (const r of results) elapsedMs = Math.max(elapsedMs, r.startMs + r.e2eMs);
  return { shape, results, elapsedMs };
}

