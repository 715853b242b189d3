// sla.ts: service tiers: their names, their order (the first is the most important), their latency
// targets (time to first token, time per output token) and queue timeouts, and whether a finished
// request met its tier's targets. It does not schedule (scheduler.ts orders work by tier rank) and
// does not measure (the engine's metrics do).

export interface SlaTier {
  readonly name: string;
  /** Target time from arrival to the first output token, in ms. */
  readonly ttftTargetMs: number;
  /** Target mean time between output tokens after the first, in ms. */
  readonly tpotTargetMs: number;
  /** A request still waiting for its first schedule this long after arrival fails; Infinity = never. */
  readonly queueTimeoutMs: number;
}

/**
 * Defaults, most important first. NOTE: the numbers are a starting point for a chat product (a reply
 * should start within half a second and stream faster than reading speed) and an offline queue
 * (minutes are fine); a deployment sets its own through the scheduler config.
 */
export const DEFAULT_TIERS: readonly SlaTier[] = [
  { name: "interactive", ttftTargetMs: 500, tpotTargetMs: 50, queueTimeoutMs: 10_000 },
  { name: "standard", ttftTargetMs: 2_000, tpotTargetMs: 100, queueTimeoutMs: 60_000 },
  { name: "batch", ttftTargetMs: 60_000, tpotTargetMs: 1_000, queueTimeoutMs: 600_000 },
];

export const DEFAULT_TIER = "standard";

/** Tiers by name and rank (0 = most important). */
export class TierTable {
  private readonly byName = new Map<string, { tier: SlaTier; rank: number }>();

  /** The tier of a request that names none. */
  readonly defaultTier: string;

  /** defaultTier: "standard" when there is such a tier, else the last (least important) one. */
  constructor(readonly tiers: readonly SlaTier[] = DEFAULT_TIERS, defaultTier?: string) {
    if (tiers.length === 0) throw new Error("sla tiers: at least one tier is needed");
    tiers.forEach((tier, rank) => {
      if (typeof tier.name !== "string" || tier.name === "") throw new Error(`sla tiers: tier ${rank} needs a non-empty name`);
      if (this.byName.has(tier.name)) throw new Error(`sla tiers: tier "${tier.name}" is listed twice`);
      for (const key of ["ttftTargetMs", "tpotTargetMs", "queueTimeoutMs"] as const) {
        const v = tier[key];
        if (typeof v !== "number" || !(v > 0)) throw new Error(`sla tiers: tier "${tier.name}" ${key} must be a positive number (Infinity allowed), got ${v}`);
      }
      this.byName.set(tier.name, { tier, rank });
    });
    this.defaultTier = defaultTier ?? (this.byName.has(DEFAULT_TIER) ? DEFAULT_TIER : tiers[tiers.length - 1]!.name);
    this.get(this.defaultTier);
  }

  get size(): number {
    return this.tiers.length;
  }

  get(name: string): SlaTier {
    return this.entry(name).tier;
  }

  /** 0 for the most important tier. */
  rank(name: string): number {
    return this.entry(name).rank;
  }

  private entry(name: string): { tier: SlaTier; rank: number } {
    const e = this.byName.get(name);
    if (e === undefined) throw new Error(`sla tiers: unknown tier "${name}" (known: ${[...this.byName.keys()].join(", ")})`);
    return e;
  }
}

export interface SlaVerdict {
  readonly ttftMet: boolean;
  /** True when at most one token was produced (no inter-token time to judge). */
  readonly tpotMet: boolean;
}

/** Did a request meet its tier's targets? tpotMs: mean time per output token after the first (NaN if none). */
export function judgeSla(tier: SlaTier, ttftMs: number, tpotMs: number): SlaVerdict {
  return { ttftMet: ttftMs <= tier.ttftTargetMs, tpotMet: Number.isNaN(tpotMs) || tpotMs <= tier.tpotTargetMs };
}
