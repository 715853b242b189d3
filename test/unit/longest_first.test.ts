// longest_first.test.ts: the suite's file order (test/helpers/longest_first.ts): files in the committed
// durations table start longest first, a file the table lacks takes vitest's cached duration, and a file
// neither knows starts before all of them (as vitest starts unknown files first).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestSpecification } from "vitest/node";
import { describe, expect, it } from "vitest";
import LongestFirst from "../helpers/longest_first.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const table = JSON.parse(readFileSync(join(ROOT, "test/helpers/file_durations.json"), "utf8")) as Record<string, number>;
const spec = (path: string) => ({ moduleId: join(ROOT, path), project: { name: "" } }) as unknown as TestSpecification;
const order = async (paths: string[], cached: Record<string, number> = {}) => {
  const ctx = { config: { root: ROOT }, cache: { getFileTestResults: (key: string) => (key in cached ? { duration: cached[key]!, failed: false } : undefined) } };
  const sorted = await new LongestFirst(ctx as never).sort(paths.map(spec));
  return sorted.map((s) => s.moduleId.slice(ROOT.length));
};

describe("LongestFirst", () => {
  const known = Object.entries(table).sort((a, b) => b[1] - a[1]);
  const [longest, middle, shortest] = [known[0]![0], known[Math.floor(known.length / 2)]![0], known.at(-1)![0]];

  it("starts the table's files longest first, whatever order they come in", async () => {
    expect(await order([shortest, longest, middle])).toEqual([longest, middle, shortest]);
    expect(await order([middle, shortest, longest])).toEqual([longest, middle, shortest]);
  });

  it("takes vitest's cached duration for a file the table lacks, and starts a file neither knows first", async () => {
    const cachedOnly = "test/unit/not_in_the_table_a.test.ts";
    const unknown = "test/unit/not_in_the_table_b.test.ts";
    // 1 ms in the cache: after the table's median file (seconds, well above 0.001).
    expect(table[middle]!).toBeGreaterThan(0.01);
    expect(await order([cachedOnly, middle, unknown, longest], { [`:${cachedOnly}`]: 1 })).toEqual([unknown, longest, middle, cachedOnly]);
    // A cached hour: before the table's longest.
    expect(await order([longest, cachedOnly], { [`:${cachedOnly}`]: 3_600_000 })).toEqual([cachedOnly, longest]);
  });
});
