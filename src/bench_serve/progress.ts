// progress.ts: what `kiln bench serve` shows on stderr while a level runs: on a terminal, a bar
// redrawn in place (at most 5 times a second); elsewhere (a log, a pipe), one line every few seconds.
// It only formats and writes; the level tells it what finished.

import type { RequestResult } from "./request.js";

/** Where progress goes: process.stderr, or anything with write (and isTTY for the bar). */
export interface ProgressSink {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export interface LevelProgress {
  result(r: RequestResult): void;
  /** The level is over: the final state, then a newline on a terminal. */
  finish(): void;
}

const BAR_WIDTH = 24;
const TTY_EVERY_MS = 200;
const LINE_EVERY_MS = 5000;

/**
 * Progress of one level: `total` requests at most and/or `durationMs`; the bar fills with whichever
 * is further along.
 */
export function levelProgress(sink: ProgressSink, label: string, total: number | undefined, durationMs: number | undefined): LevelProgress {
  const start = performance.now();
  let done = 0;
  let errors = 0;
  const fraction = () => {
    const byCount = total === undefined ? 0 : done / total;
    const byTime = durationMs === undefined ? 0 : (performance.now() - start) / durationMs;
    return Math.min(1, Math.max(byCount, byTime));
  };
  const status = () => {
    const count = total === undefined ? `${done} done` : `${done}/${total}`;
    return `${count}, ${errors} error${errors === 1 ? "" : "s"}, ${((performance.now() - start) / 1000).toFixed(1)} s`;
  };
  const draw = () => {
    if (sink.isTTY) {
      const filled = Math.round(fraction() * BAR_WIDTH);
      sink.write(`\r\x1b[K${label}  [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]  ${status()}`);
    } else {
      sink.write(`kiln bench serve: ${label}: ${status()}\n`);
    }
  };
  // NOTE: a timer, not only redraws on results, so a level whose requests are slow still shows it is alive.
  // unref: it must never keep the process up.
  const timer = setInterval(draw, sink.isTTY ? TTY_EVERY_MS : LINE_EVERY_MS);
  timer.unref();
  draw();
  return {
    result(r) {
      done++;
      if (r.error) errors++;
    },
    finish() {
      clearInterval(timer);
      draw();
      if (sink.isTTY) sink.write("\n");
    },
  };
}
