// index.ts: the entry of src/dist, what the CLI and other layers may import. Distributed training
// lives here; this file only gathers the public names of its parts.

// launch/: the rank environment (torchrun's and Slurm's variables), the one-host launcher, and the
// Kubernetes and Slurm job writers.
export type { RankEnv } from "./launch/env.js";
export { DEFAULT_MASTER_PORT, readRankEnv, rankEnvFromSlurm, rankEnvFromTorchrun, torchrunVars } from "./launch/env.js";
export { LaunchEnvError, LaunchSpecError } from "./launch/errors.js";
export type { LaunchSpec, Master } from "./launch/spec.js";
export { checkSpec, localRanks, parseCount, parseMaster } from "./launch/spec.js";
export type { LaunchOptions, LaunchResult, Recovery } from "./launch/launcher.js";
export { freePort, launch } from "./launch/launcher.js";
export type { ClusterJob } from "./launch/cluster_job.js";
export { DEFAULT_JOB_NAME, checkClusterJob } from "./launch/cluster_job.js";
export { emitK8s, k8sManifests } from "./launch/emit_k8s.js";
export { emitSlurm } from "./launch/emit_slurm.js";
export type { ServeDeployment, ServiceType } from "./launch/emit_k8s_serve.js";
export { SERVICE_TYPES, checkServeDeployment, emitK8sServe, serveManifests } from "./launch/emit_k8s_serve.js";
export type { Marker } from "./launch/markers.js";
export { MARKER_PREFIX, markerLine, parseMarker, restartCount } from "./launch/markers.js";

// The communicator: the interface, the TCP rendezvous store, and the `local` backend (ranks as processes).
export type { Communicator, ReduceOp } from "./comm.js";
export { chunkBounds } from "./comm.js";
export type { CommBackend, CommunicatorOptions } from "./create_communicator.js";
export { COMM_BACKENDS, createCommunicator, createCommunicatorFromEnv, torchrunEnv } from "./create_communicator.js";
export type { NcclCommunicator } from "./nccl/nccl_comm.js";
export { NCCL_DATA_TYPES, NCCL_RED_OPS, ncclDataType, ncclRedOp } from "./nccl/nccl_types.js";
export { TCPStore } from "./store.js";

// Data parallel: the gradient hook (all-reduce mean), each rank's rows of the global batch, and the start
// of a replica (same layout and config everywhere, rank 0's parameters).
export type { BatchesOf, DataParallel, DataParallelOptions, FlatGradientHook, StepTimings, TokenBatch } from "./data_parallel.js";
export { dataParallel, RankRows } from "./data_parallel.js";
export type { ParameterOwner } from "./replica_start.js";
export { replicaStart } from "./replica_start.js";
export { agreeOnConfig } from "./agree_config.js";

// Collectives as graph nodes (f32 tensors, run by a Communicator when the graph is realized or replayed), and
// Megatron's parallel-region pairs: each collective with the backward its place in a parallel layer needs.
export { allGather, allReduce, allToAll, broadcast, graphGroupId, localSlice, reduceScatter } from "./graph_collectives.js";
export {
  allToAllParallel, copyToParallel, gatherFromParallel, gatherFromSequence, reduceFromParallel, scatterToParallel, scatterToSequence,
} from "./parallel_regions.js";

// The device mesh: ranks over (pp, dp, tp), expert groups inside dp, one communicator per dimension.
export type { DeviceMesh, MeshCoords, MeshShape } from "./mesh.js";
export { checkMeshShape, deviceMesh, meshCoords, meshGroups, meshRank } from "./mesh.js";
// Ranks of unequal speed: rows per rank by measured speed (data_parallel.ts weights the gradient by them).
export { balancedShares, medianMs, sharesBySpeed } from "./hetero_shares.js";
// Fault detection: every rank's heartbeat (a worker thread bumping a store counter) and the watcher that
// calls a rank silent (hung or dead) within seconds, so the collectives abort naming it.
export type { Heartbeat, HealthFault } from "./health/heartbeat.js";
export { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS, heartbeatTiming, startHeartbeat } from "./health/heartbeat.js";
export type { Silent } from "./health/silence.js";
export { LEFT, SilenceWatch } from "./health/silence.js";

// Expert parallel: MoE experts sharded over the ranks, tokens exchanged by all-to-all (graph collectives).
export type { ExpertParallelTraining, FlatSlot } from "./expert_parallel.js";
export { expertExchange, expertParallelTraining, expertShare, isExpertParameter, shardExperts } from "./expert_parallel.js";
export type { WholeMoeModel } from "./expert_parallel_train.js";
export { expertParallelFromWhole } from "./expert_parallel_train.js";
// ZeRO-1/2: the optimizer sharded over the ranks (the Trainer's sharding option).
export type { FlatSharding, ZeroStage } from "./zero.js";
export { shardRange, zeroSharding } from "./zero.js";
// ZeRO-3: the parameters sharded too, each layer gathered in the step's graph (train/zero3_trainer.ts's sharding).
export type { GroupSharding } from "./zero3.js";
export { zero3Sharding } from "./zero3.js";

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
export { tensorParallelGradNorm, tensorParallelHostNorm } from "./tensor_parallel_norm.js";
export { tensorParallelFromLoaded } from "./tensor_parallel_load.js";
export type { WholeModel } from "./tensor_parallel_train.js";
export { tensorParallelFromWhole } from "./tensor_parallel_train.js";
export type { FlatLayout } from "./tensor_parallel_state.js";
export { partArrays, wholeArrays } from "./tensor_parallel_state.js";
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
export { pieceCount } from "./pipeline_stage.js";
export { MicroRows, pipelineEvalLoss } from "./pipeline_train.js";
export { pipelinePartArrays, pipelineWholeArrays, stageWholeLayout } from "./pipeline_state.js";
