// emit_slurm.ts: a ClusterJob as an sbatch script: one task per node (srun), each running
// `kiln launch` for its node with the node index Slurm gives it (SLURM_NODEID) and the job's first
// host as master (`scontrol show hostnames`). It only writes the script; sbatch submits it.

import type { ClusterJob } from "./cluster_job.js";
import { checkClusterJob } from "./cluster_job.js";
import { shellQuote } from "./shell_quote.js";

export function emitSlurm(job: ClusterJob): string {
  const j = checkClusterJob(job);
  // NOTE: srun's tasks run this through bash -c so that SLURM_NODEID is read on each node, not once
  // in the batch script on the first; the command is quoted twice for that, once per shell.
  const launch = [
    "exec kiln launch --nproc", String(j.nproc), "--nnodes", String(j.nnodes), '--node-rank "$SLURM_NODEID"',
    '--master "$MASTER_ADDR:$MASTER_PORT" --', ...j.command.map(shellQuote),
  ].join(" ");
  return [
    "#!/bin/bash",
    `# kiln launch --emit slurm: ${j.nnodes} node(s) x ${j.nproc} process(es). Submit with: sbatch <this file>`,
    `#SBATCH --job-name=${j.name}`,
    `#SBATCH --nodes=${j.nnodes}`,
    "#SBATCH --ntasks-per-node=1",
    ...(j.gpusPerNode === undefined ? [] : [`#SBATCH --gpus-per-node=${j.gpusPerNode}`]),
    "set -eu",
    "",
    "# Rank 0 runs on the job's first host; its launcher's rank 0 serves the rendezvous there.",
    'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
    `MASTER_PORT=${j.masterPort}`,
    "export MASTER_ADDR MASTER_PORT",
    "",
    "# One kiln launch per node; it starts this node's ranks (RANK = SLURM_NODEID * nproc + local rank).",
    `srun --nodes=${j.nnodes} --ntasks-per-node=1 bash -c ${shellQuote(launch)}`,
    "",
  ].join("\n");
}
