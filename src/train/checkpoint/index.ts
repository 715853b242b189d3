// index.ts: the training checkpoint layer's public entry: write (async, durable, retained), verify,
// find the newest good one and load it back as plain data.

export { Checkpointer } from "./async_checkpointer.js";
export type { CheckpointerOptions, SaveOptions } from "./async_checkpointer.js";
export { nodeCheckpointFs } from "./checkpoint_fs.js";
export type { CheckpointFile, CheckpointFs } from "./checkpoint_fs.js";
export { CHECKPOINT_FILES, CHECKPOINT_FORMAT_VERSION, CheckpointError, stepDirName } from "./checkpoint_layout.js";
export type { CheckpointManifest, ManifestEntry } from "./checkpoint_manifest.js";
export { latestGoodCheckpoint, listCheckpoints, loadCheckpoint, removePartialWrites, resumeFromLatest } from "./checkpoint_resume.js";
export type { CheckpointListing, LoadOptions, Warn } from "./checkpoint_resume.js";
export { pruneCheckpoints, stepsToDelete } from "./checkpoint_retention.js";
export type { RetentionPolicy } from "./checkpoint_retention.js";
export { checkSignature, modelSignature, signatureHash } from "./checkpoint_state.js";
export type { CheckpointState, CheckpointTensor, Json, ModelSignature } from "./checkpoint_state.js";
export { verifyCheckpoint } from "./checkpoint_verify.js";
export type { VerifyReport } from "./checkpoint_verify.js";
export { writeCheckpoint } from "./checkpoint_writer.js";
export type { WriteOptions } from "./checkpoint_writer.js";
export { readShardPart, resumeSharded } from "./sharded_checkpoint_reader.js";
export type { ShardPart } from "./sharded_checkpoint_reader.js";
export { writeShardedCheckpoint } from "./sharded_checkpoint_writer.js";
export type { CheckpointGroup, CheckpointShard, ShardedMeta, ShardedStateJson, ShardedWriteOptions } from "./sharded_checkpoint_writer.js";
