// index.ts: the entry of src/bench_serve, the load generator behind `kiln bench serve`: what the CLI
// and tests use. The pieces: request.ts (one timed request), run_level.ts (closed and open loop),
// arrivals.ts (seeded Poisson times), percentiles.ts, report.ts (JSON + markdown), progress.ts;
// the SSE reader is src/serve/sse_reader.ts, shared with the browser's HttpEngineClient.

export type { BenchServeHooks, BenchServeOptions } from "./bench_serve.js";
export { DEFAULT_REQUESTS, MAX_REQUESTS, runBenchServe } from "./bench_serve.js";
export { PoissonArrivals } from "./arrivals.js";
export { percentile, summarize } from "./percentiles.js";
export type { Summary } from "./percentiles.js";
export type { ProgressSink } from "./progress.js";
export type { BenchReport, LevelReport, RunSettings } from "./report.js";
export { markdownReport } from "./report.js";
export type { Endpoint, RequestError, RequestResult, RequestSpec } from "./request.js";
export { ENDPOINTS } from "./request.js";
export type { LoadShape } from "./run_level.js";
export type { ComparisonHooks, ServeLevelComparison, ServePoint } from "./compare.js";
export { compareServe, runServeComparison, serveTable } from "./compare.js";
