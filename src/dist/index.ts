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

// Collectives as graph nodes (f32 tensors, run by a Communicator when the graph is realized or replayed), and
// Megatron's parallel-region pairs: each collective with the backward its place in a parallel layer needs.
export { allGather, allReduce, allToAll, broadcast, graphGroupId, localSlice, reduceScatter } from "./graph_collectives.js";
export {
  allToAllParallel, copyToParallel, gatherFromParallel, gatherFromSequence, reduceFromParallel, scatterToParallel, scatterToSequence,
} from "./parallel_regions.js";

// The device mesh: ranks over (pp, dp, tp), expert groups inside dp, one communicator per dimension.
export type { DeviceMesh, MeshCoords, MeshShape } from "./mesh.js";
export { checkMeshShape, deviceMesh, meshCoords, meshGroups, meshRank } from "./mesh.js";

// Tensor parallel (Megatron-style): the layers, the GPT-2 and Llama built from them, moving weights between a
// whole model and the ranks' slices, the vocab-parallel loss and the gradient norm the trainer clips by.
export type { TpContext, TpSplit } from "./tensor_parallel_layers.js";
export { ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding } from "./tensor_parallel_layers.js";
export type { TpModelOptions } from "./tensor_parallel_model.js";
export { TpLanguageModel } from "./tensor_parallel_model.js";
export { TpGpt2 } from "./tensor_parallel_gpt2.js";
export { TpLlama } from "./tensor_parallel_llama.js";
export type { HostArray, TpShardable } from "./tensor_parallel_shard.js";
export { gatherShards, loadShards, shardArray, unshardArrays } from "./tensor_parallel_shard.js";
export { vocabParallelCrossEntropy } from "./vocab_parallel_loss.js";
export { tensorParallelGradNorm } from "./tensor_parallel_norm.js";
export { tensorParallelFromLoaded } from "./tensor_parallel_load.js";
