// silence.ts: the heartbeat watcher's judgement, as plain arithmetic on what the store answered: each
// rank bumps a counter every interval, the watcher reads every rank's counter once per round, and a rank
// whose counter stood still for longer than the limit is silent (hung, stopped or dead). It owns no
// sockets or timers (heartbeat_worker.ts reads the store and feeds it); what it decides is plain data.
// NOTE: the store is hosted by rank 0's main thread, which does not answer while it computes. A reading
// that comes late shows every counter moved at once, so nothing looks silent; and a rank counts as silent
// only when this watcher's own rounds went through often enough in the silent time (limit / interval
// rounds) that the store was demonstrably answering: a stalled store is not read as a silent rank.

/** A counter value a rank sets when it leaves cleanly: past it, the rank is gone, not silent. */
export const LEFT = 1e12;

export interface Silent {
  readonly rank: number;
  /** How long its counter stood still, by this watcher's clock (ms). */
  readonly silentMs: number;
  /** Its last counter value (beats it sent before it went quiet). */
  readonly beats: number;
}

export class SilenceWatch {
  private readonly last: number[];
  private readonly changedAt: number[];
  private readonly roundsSince: number[];
  private readonly flagged = new Set<number>();

  constructor(readonly size: number, readonly self: number, private readonly limitMs: number, private readonly intervalMs: number) {
    if (!(limitMs > 0 && intervalMs > 0 && intervalMs < limitMs)) {
      throw new Error(`heartbeats: the interval (${intervalMs} ms) must be > 0 and below the silence limit (${limitMs} ms)`);
    }
    this.last = new Array<number>(size).fill(0);
    this.changedAt = new Array<number>(size).fill(0);
    this.roundsSince = new Array<number>(size).fill(0);
  }

  /**
   * One round's reading (`counts[r]`: rank r's counter, `now`: when the answers came) -> the ranks that
   * became silent in it (each is reported once). A rank that never beat (0) is not judged yet.
   */
  observe(now: number, counts: readonly number[]): Silent[] {
    if (counts.length !== this.size) throw new Error(`heartbeats: a reading of ${counts.length} counters for ${this.size} ranks`);
    const out: Silent[] = [];
    const minRounds = Math.floor(this.limitMs / this.intervalMs);
    for (let r = 0; r < this.size; r++) {
      const c = counts[r]!;
      if (c !== this.last[r] || this.changedAt[r] === 0) {
        this.last[r] = c;
        this.changedAt[r] = now;
        this.roundsSince[r] = 0;
        continue;
      }
      this.roundsSince[r]!++;
      if (r === this.self || c === 0 || c >= LEFT || this.flagged.has(r)) continue;
      const silentMs = now - this.changedAt[r]!;
      if (silentMs > this.limitMs && this.roundsSince[r]! >= minRounds) {
        this.flagged.add(r);
        out.push({ rank: r, silentMs, beats: c });
      }
    }
    return out;
  }
}
