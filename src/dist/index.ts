// index.ts: the entry of src/dist, what the CLI and other layers may import. Distributed training
// lives here; this file only gathers the public names of its parts.

// launch/: the rank environment (torchrun's and Slurm's variables), the one-host launcher, and the
// Kubernetes and Slurm job writers.
export type { RankEnv } from "./launch/env.js";
export { DEFAULT_MASTER_PORT, readRankEnv, rankEnvFromSlurm, rankEnvFromTorchrun, torchrunVars } from "./launch/env.js";
export { LaunchEnvError, LaunchSpecError } from "./launch/errors.js";
export type { LaunchSpec, Master } from "./launch/spec.js";
export { checkSpec, localRanks, parseCount, parseMaster } from "./launch/spec.js";
export type { LaunchOptions, LaunchResult } from "./launch/launcher.js";
export { freePort, launch } from "./launch/launcher.js";
export type { ClusterJob } from "./launch/cluster_job.js";
export { DEFAULT_JOB_NAME, checkClusterJob } from "./launch/cluster_job.js";
export { emitK8s, k8sManifests } from "./launch/emit_k8s.js";
export { emitSlurm } from "./launch/emit_slurm.js";

// The communicator: the interface, the TCP rendezvous store, and the `local` backend (ranks as processes).
export type { Communicator, ReduceOp } from "./comm.js";
export { chunkBounds } from "./comm.js";
export type { CommunicatorOptions } from "./create_communicator.js";
export { createCommunicator, createCommunicatorFromEnv, torchrunEnv } from "./create_communicator.js";
export { TCPStore } from "./store.js";

// Data parallel: the gradient hook (all-reduce mean), each rank's rows of the global batch, and the start
// of a replica (same layout and config everywhere, rank 0's parameters).
export type { BatchesOf, DataParallel, FlatGradientHook, TokenBatch } from "./data_parallel.js";
export { dataParallel, RankRows } from "./data_parallel.js";
export type { ParameterOwner } from "./replica_start.js";
export { replicaStart } from "./replica_start.js";

// Pipeline parallel: stages cut by measured piece cost, the 1F1B schedule over send/recv, and the
// trainer hooks (gradientSource, gradientNorm) that train a stage.
export type { PipelineGroup, PipelineOptions, PipelineParallel, StageTiming } from "./pipeline.js";
export { pipelineParallel } from "./pipeline.js";
export type { PipelineModel } from "./pipeline_stage.js";
export { PipelineStage } from "./pipeline_stage.js";
export type { StageRange } from "./pipeline_partition.js";
export { partition as pipelinePartition } from "./pipeline_partition.js";
export type { PipelineAction } from "./pipeline_schedule.js";
export { oneForwardOneBackward, simulateOneForwardOneBackward } from "./pipeline_schedule.js";
