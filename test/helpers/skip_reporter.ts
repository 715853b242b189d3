// skip_reporter.ts: a vitest reporter (next to the default one in vitest.config.ts) that ends every run
// with what was skipped and why, grouped by reason, and under CI=true fails the run on any skip CI does
// not expect: CI has chromium (so WebGPU on SwiftShader and the browser tests), so only the skips for
// nvcc or a GPU, and the known gaps in test/conformance/skips.ts, may happen there. A skip's reason is
// its ctx.skip(note), else the " (skipped: ...)" at the end of its name or a suite's (skip_reasons.ts).

import type { Reporter, TestCase, TestModule, TestSuite, Vitest } from "vitest/node";
import { SKIPS } from "../conformance/skips.js";
import { REQUIREMENTS, reasonInName, requirementOf, withoutLabels } from "./skip_reasons.js";

const NO_REASON = "no reason given (a bare skip or todo, or a test left out by -t or .only)";
/** How many tests the CI failure names per reason. */
const SHOWN = 10;

/** Why `test` was skipped, as the test said it. */
function reasonOf(test: TestCase): string | undefined {
  const result = test.result();
  if (result.state === "skipped" && result.note) return result.note;
  for (let node: TestCase | TestSuite | TestModule = test; node.type !== "module"; node = node.parent) {
    const reason = reasonInName(node.name);
    if (reason) return reason;
  }
  return undefined;
}

/** Whether CI may skip for `reason`: a requirement CI lacks (nvcc, a GPU), or a gap in the skip table. */
function expectedInCi(reason: string | undefined): boolean {
  if (!reason) return false;
  const requirement = requirementOf(reason);
  if (requirement) return !REQUIREMENTS[requirement].inCi;
  return SKIPS.some((s) => reason.includes(s.reason));
}

interface Skip {
  readonly test: TestCase;
  /** Its reason, or NO_REASON. */
  readonly reason: string;
  readonly expectedInCi: boolean;
}

/** The skips by reason, the most frequent first. */
function byReason(skips: readonly Skip[]): [string, Skip[]][] {
  const groups = new Map<string, Skip[]>();
  for (const s of skips) groups.set(s.reason, [...(groups.get(s.reason) ?? []), s]);
  return [...groups].sort((a, b) => b[1].length - a[1].length);
}

export default class SkipReporter implements Reporter {
  private vitest?: Vitest;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const log = (line: string) => (this.vitest ? this.vitest.logger.log(line) : console.log(line));
    const error = (line: string) => (this.vitest ? this.vitest.logger.error(line) : console.error(line));
    const skips = modules.flatMap((m) => [...m.children.allTests("skipped")]).map((test): Skip => {
      const reason = reasonOf(test);
      return { test, reason: reason ?? NO_REASON, expectedInCi: expectedInCi(reason) };
    });
    if (skips.length === 0) return log(" Skipped: none");
    const width = String(skips.length).length;
    log(` Skipped: ${skips.length} test${skips.length === 1 ? "" : "s"}, by reason (README.md, "Tests", says what turns them on):`);
    for (const [reason, group] of byReason(skips)) log(`   ${String(group.length).padStart(width)}  ${reason}`);

    const unexpected = skips.filter((s) => !s.expectedInCi);
    if (process.env.CI !== "true" || unexpected.length === 0) return;
    process.exitCode = 1;
    error(`\n CI=true: ${unexpected.length} skip${unexpected.length === 1 ? " is" : "s are"} not expected in CI, where .ci/run installs chromium and libvulkan1 (only nvcc, GPU and skip-table skips may happen there), so the run fails:`);
    for (const [reason, group] of byReason(unexpected)) {
      error(`   ${reason}:`);
      for (const { test } of group.slice(0, SHOWN)) error(`     ${test.module.relativeModuleId} > ${withoutLabels(test.fullName)}`);
      if (group.length > SHOWN) error(`     ... and ${group.length - SHOWN} more`);
    }
  }
}
