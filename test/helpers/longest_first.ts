// longest_first.ts: the order the suite's files start in (vitest.config.ts sequence.sequencer): the longest
// first, so the two workers finish together instead of one starting a 90 s file when the other is done.
// NOTE: vitest's own order is longest first only where its results cache (node_modules/.vite/vitest) holds
// every file; a fresh checkout (CI) has none and vitest then starts the largest files (bytes) first, which
// says little about time: the 1 KB browser tests run for a minute. So the durations come from
// file_durations.json (seconds per file of a full two-worker run: plain data, committed), and a file missing
// from it (a new one) from vitest's cache, else it counts as the longest: a new file starts early, as in
// vitest's order. Refresh the table after a full run from that cache's results.json
// (`[":path", { duration: ms }]` pairs), rounding to 0.1 s.

import { readFileSync } from "node:fs";
import { relative } from "node:path";
import type { TestSpecification } from "vitest/node";
import { BaseSequencer } from "vitest/node";

const measured = JSON.parse(readFileSync(new URL("./file_durations.json", import.meta.url), "utf8")) as Record<string, number>;

/** A file's expected seconds: the table's, else the cache's, else (never seen) more than any. */
function expectedSeconds(spec: TestSpecification, root: string, cached: (key: string) => { duration: number } | undefined): number {
  const path = relative(root, spec.moduleId).split("\\").join("/");
  return measured[path] ?? (cached(`${spec.project.name}:${path}`)?.duration ?? Infinity) / 1000;
}

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const cached = (key: string) => this.ctx.cache.getFileTestResults(key);
    const seconds = new Map(files.map((f) => [f, expectedSeconds(f, root, cached)]));
    // NOTE: two never-seen files give Infinity - Infinity = NaN, falsy: they fall to the name order.
    return [...files].sort((a, b) => seconds.get(b)! - seconds.get(a)! || (a.moduleId < b.moduleId ? -1 : 1));
  }
}
