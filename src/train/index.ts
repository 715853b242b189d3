// index.ts: the training layer's public entry (what the CLI and users import); each part's own index
// file lists its API.

export * from "./checkpoint/index.js";
export * from "./data/index.js";
