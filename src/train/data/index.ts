// index.ts: the data pipeline's public entry: preparing shards (prepareShards), reading them (openShards,
// the shard index schema) and the loader (createLoader, its plain-data LoaderState for checkpoints).
// Nothing else in this folder is meant to be imported from outside it.

export { prepareShards, type PrepareOptions } from "./prepare.js";
export { readCorpus, type CorpusOptions } from "./corpus.js";
export { INDEX_FILE, checkShardIndex, type ShardIndex, type ShardEntry, type SplitName } from "./shard_index.js";
export { openShards, type OpenOptions, type ShardSet } from "./shard_source.js";
export { createLoader, DataLoader, type Batch, type LoaderOptions, type LoaderState, type LoaderStats } from "./loader.js";
export type { SampleMode } from "./sampler.js";
