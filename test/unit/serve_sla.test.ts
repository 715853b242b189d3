// SLA tiers: the default table, validation of custom tiers, the default tier, and target checks.

import { describe, expect, it } from "vitest";
import { DEFAULT_TIERS, TierTable, judgeSla } from "../../src/serve/sla.js";

describe("TierTable", () => {
  it("ranks the default tiers most important first, with standard as the default", () => {
    const t = new TierTable();
    expect(DEFAULT_TIERS.map((x) => t.rank(x.name))).toEqual([0, 1, 2]);
    expect(t.defaultTier).toBe("standard");
    expect(t.get("interactive").ttftTargetMs).toBe(500);
  });

  it("validates custom tiers and picks the least important as the default when there is no standard", () => {
    const gold = { name: "gold", ttftTargetMs: 100, tpotTargetMs: 20, queueTimeoutMs: 1000 };
    const bronze = { name: "bronze", ttftTargetMs: 1000, tpotTargetMs: 200, queueTimeoutMs: Infinity };
    expect(new TierTable([gold, bronze]).defaultTier).toBe("bronze");
    expect(new TierTable([gold, bronze], "gold").defaultTier).toBe("gold");
    expect(() => new TierTable([])).toThrow(/at least one tier/);
    expect(() => new TierTable([gold, gold])).toThrow(/tier "gold" is listed twice/);
    expect(() => new TierTable([{ ...gold, tpotTargetMs: 0 }])).toThrow(/tier "gold" tpotTargetMs must be a positive number/);
    expect(() => new TierTable([gold], "silver")).toThrow(/unknown tier "silver" \(known: gold\)/);
  });

  it("judges a request against its tier's targets", () => {
    const t = new TierTable().get("interactive");
    expect(judgeSla(t, 400, 40)).toEqual({ ttftMet: true, tpotMet: true });
    expect(judgeSla(t, 600, 60)).toEqual({ ttftMet: false, tpotMet: false });
    expect(judgeSla(t, 100, NaN)).toEqual({ ttftMet: true, tpotMet: true });
  });
});
