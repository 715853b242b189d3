// index.ts: the training layer's entry, for the CLI and library users. So far: experiment tracking
// (src/train/tracking): the runs database, comparisons of two runs, and SVG curves.

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
export type { RunsServer } from "./tracking/runs_server.js";
export { svgToPng } from "./tracking/png_render.js";
