// index.ts: the training layer's public entry (what the CLI and users import): the loop (trainer.ts),
// its parts, the data pipeline (data/), the checkpoint file layer (checkpoint/) and experiment
// tracking (tracking/).

export * from "./checkpoint/index.js";
export * from "./data/index.js";
export { Trainer } from "./trainer.js";
export type { StepStats, TrainerOptions, TrainState } from "./trainer.js";
export { AdamW } from "./optim/adamw.js";
export type { AdamWOptions, AdamWState } from "./optim/adamw.js";
export { Sgd } from "./optim/sgd.js";
export type { SgdOptions, SgdState } from "./optim/sgd.js";
export { createOptimizer } from "./optim/optimizer.js";
export type { Optimizer, OptimizerOptions, OptimizerState } from "./optim/optimizer.js";
export { ParamLayout } from "./param_layout.js";
export type { ParamSlot } from "./param_layout.js";
export { learningRate } from "./schedule.js";
export type { LrSchedule } from "./schedule.js";
export { clipByGlobalNorm, globalNorm } from "./clip.js";
export { initParameters } from "./init.js";
export { lmLoss } from "./loss.js";
export type { TrainableModel } from "./loss.js";
export { RandomWindows } from "./batches.js";
export type { Batch, BatchSource } from "./batches.js";
export { charVocab } from "./char_vocab.js";
export { LoaderBatches } from "./loader_batches.js";
export { fromCheckpointState, toCheckpointState, trainerSignature } from "./trainer_checkpoint.js";
export type { CheckpointMeta } from "./trainer_checkpoint.js";
export { parseTrainConfig, TrainConfigSchema } from "./config.js";
export { isYamlPath, parseConfigText } from "./config_file.js";
export type { TrainConfig } from "./config.js";
export { runTraining } from "./run.js";
export type { RunEvent, RunOptions, RunResult } from "./run.js";
export { runTrackedTraining, trackingTarget } from "./run_tracking.js";
export type { TrackedRunOptions, TrackedRunResult, TrackingTarget } from "./run_tracking.js";
export { DEFAULT_RUNS_DB, RunStore } from "./tracking/run_store.js";
export type { ArtifactInfo, RunInfo, Series, StartRunOptions } from "./tracking/run_store.js";
export { Run } from "./tracking/run.js";
export type { ArtifactInput, Metrics, RunStatus } from "./tracking/run.js";
export { RunsDbError, UnknownRunError } from "./tracking/errors.js";
export { alignedSteps, betterDirection, configDiff, summarize } from "./tracking/compare.js";
export type { ConfigChange, MetricSummary } from "./tracking/compare.js";
export { plotSvg } from "./tracking/svg_plot.js";
export type { PlotLine, PlotOptions } from "./tracking/svg_plot.js";
export { startRunsServer } from "./tracking/runs_server.js";
export { runsRoutes } from "./tracking/runs_routes.js";
export type { RunsRoutes } from "./tracking/runs_routes.js";
export type { RunsServer } from "./tracking/runs_server.js";
export { svgToPng } from "./tracking/png_render.js";
