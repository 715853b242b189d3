// checkpoint_command.ts: `kiln checkpoint verify DIR`: checks a training checkpoint folder against its
// manifest (every file present, sizes and sha256 as recorded, state.json readable), or every checkpoint
// under a run's checkpoint root, and says which one a resume would use. It owns the flags, the output
// and the exit code; the checks are src/train/checkpoint.

import { existsSync } from "node:fs";
import { listCheckpoints, verifyCheckpoint } from "../train/index.js";
import type { VerifyReport } from "../train/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs, subcommandArgs } from "./command.js";

const HELP = `Usage: kiln checkpoint verify DIR [--json]

Verify a training checkpoint: every file the manifest lists is present, with the recorded size and
sha256, and state.json and the safetensors headers are readable. DIR is one checkpoint folder
(step-000123/) or a run's checkpoint root, whose checkpoints are all verified; for a root the output
also names the checkpoint a resume would use (the newest good one).

Options:
  --json      print the reports as JSON ([{dir, step, ok, problems}])
  -h, --help  show this help

Exit status: 0 when every checkpoint verified, 1 when one is corrupted, incomplete or missing (each
problem is printed, naming the file), 2 on a usage error.`;

function reports(dir: string): { reports: VerifyReport[]; resume?: string } {
  const { steps, partial } = listCheckpoints(dir);
  // NOTE: a folder with checkpoint folders (or temp folders) in it, and no manifest of its own, is a root.
  if (!existsSync(`${dir}/manifest.json`) && (steps.length || partial.length)) {
    // NOTE: newest first, so the first good one is the one latestGoodCheckpoint (a resume) would take.
    const full = steps.map((c) => verifyCheckpoint(c.dir));
    return { reports: [...full, ...partial.map((p) => verifyCheckpoint(p.dir))], resume: full.find((r) => r.ok)?.dir };
  }
  return { reports: [verifyCheckpoint(dir)] };
}

export const checkpointCommand: Command = {
  name: "checkpoint",
  summary: "verify a training checkpoint (or every one under a run's checkpoint folder)",
  help: HELP,
  async run(argv) {
    const rest = subcommandArgs(this, argv, "verify");
    if (rest === undefined) return 0;
    const dirs = rest.filter((a) => !a.startsWith("-"));
    const { values } = parseCommandArgs(this, rest.filter((a) => a.startsWith("-")), { json: { type: "boolean" }, help: { type: "boolean", short: "h" } });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (dirs.length !== 1) throw new UsageError(`checkpoint verify: takes one DIR, got ${dirs.length}`, this);
    const { reports: rs, resume } = reports(dirs[0]!);
    if (values.json) console.log(JSON.stringify(rs, null, 2));
    else {
      for (const r of rs) {
        console.log(`${r.ok ? "ok     " : "FAILED "} ${r.dir}${r.step === undefined ? "" : ` (step ${r.step})`}`);
        for (const p of r.problems) console.log(`        ${p}`);
      }
      if (rs.length > 1) console.log(resume ? `resume would use ${resume}` : "no good checkpoint: a resume would start from scratch");
    }
    return rs.every((r) => r.ok) ? 0 : 1;
  },
};
