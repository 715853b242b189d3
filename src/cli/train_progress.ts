// train_progress.ts: `kiln train`'s progress bar on a terminal: one line redrawn in place with the step,
// a bar, the loss, the lr, tokens per second and the time left; the other events (held-out losses,
// samples, checkpoints) print as lines above it. Off a terminal (a pipe, a log file, the tests) the
// command prints one plain line per step instead (train_command.ts); this file only draws.

import type { RunEvent } from "../train/index.js";

const WIDTH = 24;

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The bar's line after a step event: step, bar, loss, lr, tokens/s, ETA (from the mean of the steps after the first). */
export function progressLine(e: Extract<RunEvent, { kind: "step" }>, last: number, tokensPerStep: number, msPerStep: number): string {
  const done = Math.min(1, e.step / last);
  const filled = Math.round(done * WIDTH);
  const bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
  const tps = msPerStep > 0 ? Math.round((tokensPerStep * 1000) / msPerStep) : 0;
  return `step ${e.step}/${last} [${bar}] loss ${e.loss.toFixed(4)} | lr ${e.lr.toExponential(2)} | ${tps} tok/s | ETA ${formatDuration((last - e.step) * msPerStep)}`;
}

export class ProgressBar {
  private readonly times: number[] = [];
  private line = "";

  constructor(
    private readonly out: { write(s: string): unknown; columns?: number },
    private readonly last: number,
    private readonly tokensPerStep: number,
  ) {}

  step(e: Extract<RunEvent, { kind: "step" }>): void {
    this.times.push(e.ms);
    // NOTE: the first step compiles the kernels; it would skew the rate for the whole run.
    const steady = this.times.length > 1 ? this.times.slice(1) : this.times;
    const ms = steady.reduce((a, b) => a + b, 0) / steady.length;
    this.line = progressLine(e, this.last, this.tokensPerStep, ms);
    this.out.write(`\r\x1b[2K${this.fit(this.line)}`);
  }

  /** A line above the bar (the bar is redrawn under it). */
  print(text: string): void {
    this.out.write(`\r\x1b[2K${text}\n`);
    if (this.line) this.out.write(this.fit(this.line));
  }

  /** The line cut to the terminal's width (a wrapped line could not be redrawn in place); 0 columns (no size known): 120. */
  private fit(line: string): string {
    return line.slice(0, (this.out.columns || 120) - 1);
  }

  /** Leave the bar's last state on its own line. */
  end(): void {
    if (this.line) this.out.write("\n");
    this.line = "";
  }
}
