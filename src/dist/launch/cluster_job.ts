// cluster_job.ts: a multi-node job as the cluster emitters (emit_k8s.ts, emit_slurm.ts) write it
// out: a name, nodes, processes per node, the rendezvous port, the command each rank runs, and
// optionally GPUs per node and a container image. Plain data plus its validation; no printing.

import { LaunchSpecError } from "./errors.js";
import { checkK8sName } from "./k8s_yaml.js";

export interface ClusterJob {
  /** The Job / Service / sbatch job name: a DNS label, as Kubernetes requires. */
  readonly name: string;
  readonly nnodes: number;
  /** Processes per node (`kiln launch --nproc`). */
  readonly nproc: number;
  /** The port rank 0 serves the rendezvous on (default 29500, torchrun's). */
  readonly masterPort: number;
  /** What each rank runs: the program and its arguments. */
  readonly command: readonly string[];
  readonly gpusPerNode?: number;
  /** The container image (Kubernetes only): one with `kiln` on its PATH. */
  readonly image?: string;
}

export const DEFAULT_JOB_NAME = "kiln-train";

export function checkClusterJob(j: ClusterJob): ClusterJob {
  // NOTE: pods are named <name>-<index> and are reached as <name>-<index>.<name>: both must stay DNS labels.
  checkK8sName(j.name, 52);
  if (!Number.isInteger(j.nnodes) || j.nnodes < 1) throw new LaunchSpecError(`--nnodes ${j.nnodes} is not an integer >= 1`);
  if (!Number.isInteger(j.nproc) || j.nproc < 1) throw new LaunchSpecError(`--nproc ${j.nproc} is not an integer >= 1`);
  if (!Number.isInteger(j.masterPort) || j.masterPort < 1 || j.masterPort > 65535) throw new LaunchSpecError(`--master-port ${j.masterPort} is not a TCP port (1-65535)`);
  if (j.gpusPerNode !== undefined && (!Number.isInteger(j.gpusPerNode) || j.gpusPerNode < 1)) {
    throw new LaunchSpecError(`--gpus-per-node ${j.gpusPerNode} is not an integer >= 1`);
  }
  if (j.command.length === 0) throw new LaunchSpecError("no command for the ranks to run (give it after --)");
  return j;
}
