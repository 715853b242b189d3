// launch_command.ts: `kiln launch`: run a command as N ranks on this host (torchrun's variables), or
// write the same job out for a cluster (--emit k8s, --emit slurm). It owns the flags, the `--` that
// separates the command, and the exit code; starting, stopping and writing are src/dist's.

import type { ClusterJob, LaunchSpec } from "../dist/index.js";
import { DEFAULT_JOB_NAME, DEFAULT_MASTER_PORT, LaunchSpecError, emitK8s, emitSlurm, launch, parseCount, parseMaster } from "../dist/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";

const HELP = `Usage: kiln launch --nproc N [--nnodes M --node-rank R --master ADDR:PORT] [--grace S]
                   [--max-restarts K] [--heartbeat-timeout S] -- COMMAND [ARGS...]
       kiln launch --emit k8s|slurm --nproc N --nnodes M [--name NAME] [--image IMAGE] [--gpus-per-node G]
                   [--master-port P] -- COMMAND [ARGS...]

Run COMMAND as N processes on this host, ranks R*N .. R*N+N-1 of a job of M*N, as torchrun does:
each gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT,
and its output lines start with [rank I]. When a rank exits non-zero the others get SIGTERM (SIGKILL
after the grace period) and kiln launch exits with that rank's code. Ctrl-C, SIGTERM and SIGHUP are
passed on to every rank (SIGKILL after the grace period). Run one kiln launch per node, each with its --node-rank.
With --max-restarts K a failed rank (exited, killed, or reported hung by the ranks' heartbeats) stops
the others and every rank is started again, up to K times, with KILN_RESTART_COUNT (and torchelastic's
TORCHELASTIC_RESTART_COUNT) set to the restart's number; kiln train then resumes from its newest good
checkpoint, and the launcher prints the recovery time (failure to the first new step).

--emit prints the job for a cluster instead of running it: k8s, a headless Service and an Indexed
Job (one pod per node, each running kiln launch with its completion index as node rank); slurm, an
sbatch script (one task per node through srun, the master the job's first host).

Options:
  --nproc N          processes on each node
  --nnodes M         nodes in the job (default 1)
  --node-rank R      this node's index, 0 .. M-1 (default 0)
  --master ADDR:PORT where rank 0 serves the rendezvous (node 0's address); needed with M > 1.
                     Default with one node: 127.0.0.1 and a free port (printed)
  --grace S          seconds between SIGTERM and SIGKILL when ranks are stopped (default 5)
  --max-restarts K   restart every rank after a failure, up to K times (default 0; one node only)
  --heartbeat-timeout S  seconds without a heartbeat before the ranks call a rank hung (default 5;
                     sets KILN_HEARTBEAT_TIMEOUT_MS; kiln train beats every 0.5 s)
  --emit k8s|slurm   print a Kubernetes Job + Service, or an sbatch script, and exit
  --name NAME        (emit) the job's name, a DNS label (default ${DEFAULT_JOB_NAME})
  --image IMAGE      (emit k8s) a container image with kiln on its PATH
  --gpus-per-node G  (emit) GPUs to request on each node
  --master-port P    (emit) the rendezvous port (default ${DEFAULT_MASTER_PORT})
  -h, --help         show this help

Exit status: 0 when every rank exited 0; the failed rank's code; 128+n after signal n; 2 on a usage error.
See docs/distributed.md ("Launching") for a two-node example.

Examples:
  kiln launch --nproc 4 -- kiln train --config configs/tiny.yaml
  kiln launch --nproc 4 --max-restarts 3 -- kiln train --config configs/tiny.yaml --resume
  kiln launch --nproc 8 --nnodes 2 --node-rank 0 --master 10.0.0.1:29500 -- kiln train ...
  kiln launch --emit k8s --nproc 8 --nnodes 2 --gpus-per-node 8 --image ghcr.io/me/kiln:1 -- kiln train ...`;

const OPTIONS = {
  nproc: { type: "string" }, nnodes: { type: "string" }, "node-rank": { type: "string" }, master: { type: "string" },
  grace: { type: "string" }, "max-restarts": { type: "string" }, "heartbeat-timeout": { type: "string" }, emit: { type: "string" }, name: { type: "string" }, image: { type: "string" },
  "gpus-per-node": { type: "string" }, "master-port": { type: "string" }, help: { type: "boolean", short: "h" },
} as const;

const RUN_ONLY = ["node-rank", "master", "grace", "max-restarts", "heartbeat-timeout"] as const;
const EMIT_ONLY = ["name", "image", "gpus-per-node", "master-port"] as const;

export const launchCommand: Command = {
  name: "launch",
  summary: "run a command as N ranks on this host (torchrun-style), or print it as a Kubernetes Job / sbatch script",
  help: HELP,
  async run(argv) {
    // NOTE: everything after the first `--` is the ranks' command, its own flags included.
    const cut = argv.indexOf("--");
    const flags = cut < 0 ? argv : argv.slice(0, cut);
    const command = cut < 0 ? [] : argv.slice(cut + 1);
    const { values: v } = parseCommandArgs(launchCommand, flags, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    try {
      if (v.nproc === undefined) throw new LaunchSpecError("missing --nproc N (processes per node)");
      if (command.length === 0) throw new LaunchSpecError("no command to launch: give it after --, as in kiln launch --nproc 2 -- kiln train ...");
      const nproc = parseCount("--nproc", v.nproc);
      const nnodes = v.nnodes === undefined ? 1 : parseCount("--nnodes", v.nnodes);
      if (v.emit !== undefined) {
        const wrong = RUN_ONLY.find((f) => v[f] !== undefined);
        if (wrong) throw new LaunchSpecError(`--${wrong} is for running here, not with --emit (the emitted job sets each node's rank and master itself)`);
        if (v.emit !== "k8s" && v.emit !== "slurm") throw new LaunchSpecError(`--emit ${JSON.stringify(v.emit)} is not k8s or slurm`);
        const job: ClusterJob = {
          name: v.name ?? DEFAULT_JOB_NAME, nnodes, nproc, command,
          masterPort: v["master-port"] === undefined ? DEFAULT_MASTER_PORT : parseCount("--master-port", v["master-port"]),
          ...(v["gpus-per-node"] === undefined ? {} : { gpusPerNode: parseCount("--gpus-per-node", v["gpus-per-node"]) }),
          ...(v.image === undefined ? {} : { image: v.image }),
        };
        if (v.emit === "slurm" && v.image !== undefined) throw new LaunchSpecError("--image is for --emit k8s (an sbatch script runs kiln from the nodes' PATH)");
        process.stdout.write(v.emit === "k8s" ? emitK8s(job) : emitSlurm(job));
        return 0;
      }
      const wrong = EMIT_ONLY.find((f) => v[f] !== undefined);
      if (wrong) throw new LaunchSpecError(`--${wrong} is for --emit k8s|slurm only`);
      const master = v.master === undefined ? undefined : parseMaster(v.master);
      const spec: LaunchSpec = {
        nproc, nnodes, nodeRank: v["node-rank"] === undefined ? 0 : parseCount("--node-rank", v["node-rank"], 0),
        masterAddr: master?.addr ?? "127.0.0.1", ...(master ? { masterPort: master.port } : {}),
      };
      if (v.grace !== undefined && !/^\d+(\.\d+)?$/.test(v.grace)) throw new LaunchSpecError(`--grace ${JSON.stringify(v.grace)} is not a number of seconds >= 0`);
      const grace = v.grace === undefined ? 5 : Number(v.grace);
      const maxRestarts = v["max-restarts"] === undefined ? 0 : parseCount("--max-restarts", v["max-restarts"], 0);
      const hb = v["heartbeat-timeout"];
      if (hb !== undefined && !(/^\d+(\.\d+)?$/.test(hb) && Number(hb) >= 0.01)) throw new LaunchSpecError(`--heartbeat-timeout ${JSON.stringify(hb)} is not a number of seconds > 0`);
      const env = hb === undefined ? process.env : { ...process.env, KILN_HEARTBEAT_TIMEOUT_MS: String(Math.round(Number(hb) * 1000)) };
      const result = await launch(spec, { command, graceMs: grace * 1000, maxRestarts, env });
      return result.code;
    } catch (err) {
      if (err instanceof LaunchSpecError) throw new UsageError(`launch: ${err.message}`, launchCommand);
      throw err;
    }
  },
};
