// slurm_lists.ts: the two compressed lists Slurm writes into a job's environment that a launcher
// needs the head of: the host list (SLURM_JOB_NODELIST, "gpu[01-04,07],login1") and the tasks per
// node (SLURM_TASKS_PER_NODE, "8(x2),4"). It reads only the first entry of each; expanding a whole
// list is `scontrol show hostnames`' job.

import { LaunchEnvError } from "./errors.js";

/** Splits on commas outside brackets: "a[1,2],b" -> ["a[1,2]", "b"]. */
function topLevelItems(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === "," && depth === 0) (items.push(text.slice(start, i)), (start = i + 1));
    if (depth < 0 || depth > 1) return [];
  }
  if (depth !== 0) return [];
  items.push(text.slice(start));
  return items;
}

/**
 * The first host of a Slurm host list: "gpu[01-04,07],login1" -> "gpu01" (zero padding kept),
 * "rack[2-3]-n[5-6]" -> "rack2-n5". That host runs rank 0, so it serves the rendezvous store.
 */
export function firstHost(nodelist: string): string {
  const bad = () => new LaunchEnvError(`SLURM_JOB_NODELIST=${JSON.stringify(nodelist)} is not a Slurm host list (expected e.g. gpu[01-04,07],login1)`);
  const first = topLevelItems(nodelist.trim())[0];
  if (first === undefined || first === "") throw bad();
  const host = first.replace(/\[([^\]]*)\]/g, (_, ranges: string) => {
    const m = /^(\d+)(?:-\d+)?(?:,|$)/.exec(ranges);
    if (!m) throw bad();
    return m[1]!;
  });
  if (!/^[A-Za-z0-9._-]+$/.test(host)) throw bad();
  return host;
}

/** Tasks on the first node of SLURM_TASKS_PER_NODE: "8(x2),4" -> 8, "4" -> 4. */
export function tasksOnFirstNode(text: string): number {
  const m = /^(\d+)(?:\(x\d+\))?(?:,|$)/.exec(text.trim());
  if (!m || Number(m[1]) < 1) {
    throw new LaunchEnvError(`SLURM_TASKS_PER_NODE=${JSON.stringify(text)} is not a Slurm task count list (expected e.g. 8 or 8(x2),4)`);
  }
  return Number(m[1]);
}
