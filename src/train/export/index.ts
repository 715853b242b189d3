// index.ts: exporting a trained model for inference (an HF folder and/or GGUF with its tokenizer): from
// a trainer's state at the end of a run, or from a checkpoint.

export { EXPORT_FORMATS, EXPORT_GGUF, EXPORT_MANIFEST, ExportError, writeExport } from "./export_writer.js";
export type { ExportedFile, ExportFormat, ExportRequest, ExportResult } from "./export_writer.js";
export { exportCheckpoint, exportTrained, exportTrainState, findCheckpoint, trainedModel } from "./export_run.js";
export type { CheckpointExportOptions, ExportTarget, NamedWeights } from "./export_run.js";
export { runTokenizer, tokenizerFile } from "./run_tokenizer.js";
