// sbatch_directives.ts: a check of an sbatch script's #SBATCH directives without Slurm: each must be an
// option sbatch documents, in its long form with '=' (as kiln writes them), with a value of the documented
// form; and all of them must come before the script's first command (sbatch stops reading there).
// Provenance: option names and value forms from the sbatch manual (Slurm 22.05-24.05, `man sbatch`),
// restricted to the options listed here; an option kiln does not write and that is missing here is
// reported as unknown: add it with its documented form when needed. Cross-checked once (2026-12-07, not
// part of the tests) against Debian's slurm-client 22.05.8 `sbatch` with a minimal slurm.conf (GresTypes=gpu,
// an unreachable controller), which parses the directives before it contacts the controller: kiln's
// script got as far as "Unable to contact slurm controller"; --ntask-per-node ("unrecognized option") and
// --gpus-per-node=a100: ("Invalid generic resource") were refused. --nodes=0 passes that local parse (the
// controller refuses it); this check refuses it at once.

const count = (min: number) => (v: string) => /^\d+$/.test(v) && Number(v) >= min;
/** <minnodes>[-maxnodes], each a count >= 1 (sbatch also takes k/m suffixes, which kiln never writes). */
const nodes = (v: string) => /^\d+(-\d+)?$/.test(v) && v.split("-").every((n) => Number(n) >= 1);
/** [type:]<number>, as --gpus and --gpus-per-node document. */
const gpus = (v: string) => /^([A-Za-z0-9_.-]+:)?\d+$/.test(v) && Number(v.split(":").pop()) >= 1;
/** minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
const time = (v: string) => /^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+(:\d{2}(:\d{2})?)?)$/.test(v) || ["INFINITE", "UNLIMITED"].includes(v);
const memory = (v: string) => /^\d+[KMGT]?$/.test(v);
const text = (v: string) => v.length > 0 && !/\s/.test(v);

const OPTIONS: Readonly<Record<string, (v: string) => boolean>> = {
  "job-name": text, nodes, ntasks: count(1), "ntasks-per-node": count(1), "cpus-per-task": count(1), "gpus-per-node": gpus,
  gpus, "gpus-per-task": gpus, gres: text, time, partition: text, account: text, qos: text, mem: memory, "mem-per-cpu": memory,
  output: text, error: text, constraint: text,
};
/** Options that take no value. */
const FLAGS = new Set(["exclusive", "requeue", "no-requeue"]);

/** The directives' problems, as "line N: ..." lines; [] when sbatch would accept them all. */
export function sbatchProblems(script: string): string[] {
  const out: string[] = [];
  const lines = script.split("\n");
  if (!lines[0]!.startsWith("#!")) out.push("line 1: the script must start with #! (sbatch refuses a script without an interpreter)");
  let commands = false;
  lines.forEach((line, i) => {
    const n = i + 1;
    if (line.trim() !== "" && !line.startsWith("#")) commands = true;
    if (!line.startsWith("#SBATCH")) return;
    if (commands) return void out.push(`line ${n}: #SBATCH after the first command is ignored by sbatch: ${line}`);
    const m = /^#SBATCH --([a-z-]+)(?:=(.*))?$/.exec(line);
    if (!m) return void out.push(`line ${n}: not "#SBATCH --option[=value]": ${line}`);
    const [, name, value] = m as unknown as [string, string, string | undefined];
    if (FLAGS.has(name)) return void (value !== undefined && out.push(`line ${n}: --${name} takes no value`));
    const check = OPTIONS[name];
    if (check === undefined) return void out.push(`line ${n}: --${name} is not an sbatch option (of those checked here)`);
    if (value === undefined || !check(value)) out.push(`line ${n}: --${name}=${value ?? ""} is not a valid value for --${name}`);
  });
  return out;
}
