// checkpoint_manifest.ts: manifest.json, the last file written into a checkpoint folder: the format
// version, the kiln version that wrote it, the step, and each other file's size and sha256. It owns
// building and parsing it (a parse error names the field); checking files against it is
// checkpoint_verify.ts.

import { requireNodeBuiltin } from "../../core/host.js";
import { CHECKPOINT_FILES, CHECKPOINT_FORMAT_VERSION, MANIFEST_COVERS, shardFileName } from "./checkpoint_layout.js";

export interface ManifestEntry {
  readonly size: number;
  readonly sha256: string;
}

export interface CheckpointManifest {
  readonly format: "kiln-checkpoint";
  readonly formatVersion: number;
  readonly kilnVersion: string;
  readonly step: number;
  readonly files: Readonly<Record<string, ManifestEntry>>;
  /** A distributed checkpoint's: how many ranks wrote it (one shard file each, beside state.json); absent: a single process's. */
  readonly shards?: number;
}

/** The files a manifest must list (everything in the folder but itself): a single process's three, or state.json and every shard. */
export function manifestCovers(m: Pick<CheckpointManifest, "shards">): readonly string[] {
  if (m.shards === undefined) return MANIFEST_COVERS;
  return [CHECKPOINT_FILES.state, ...Array.from({ length: m.shards }, (_, r) => shardFileName(r, m.shards!))];
}

let version: string | undefined;

/** kiln's version from package.json (from src/ and from dist/ alike: both sit three levels below it). */
export function kilnVersion(): string {
  if (version === undefined) {
    try {
      const fs = requireNodeBuiltin("node:fs", "reading kiln's version");
      version = (JSON.parse(fs.readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
    } catch {
      version = "unknown";
    }
  }
  return version;
}

export function buildManifest(step: number, files: Record<string, ManifestEntry>, shards?: number): CheckpointManifest {
  return { format: "kiln-checkpoint", formatVersion: CHECKPOINT_FORMAT_VERSION, kilnVersion: kilnVersion(), step, files, ...(shards === undefined ? {} : { shards }) };
}

/** Parses manifest.json's text; returns the manifest or a message naming what is wrong. */
export function parseManifest(text: string): CheckpointManifest | string {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  const o = m as Partial<CheckpointManifest>;
  if (typeof o !== "object" || o === null || o.format !== "kiln-checkpoint") return `"format" is ${JSON.stringify(o?.format)}, not "kiln-checkpoint"`;
  if (o.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    return `"formatVersion" is ${JSON.stringify(o.formatVersion)}; this kiln reads version ${CHECKPOINT_FORMAT_VERSION} (written by kiln ${JSON.stringify(o.kilnVersion)})`;
  }
  if (!Number.isSafeInteger(o.step)) return `"step" is ${JSON.stringify(o.step)}, not a whole number`;
  if (typeof o.files !== "object" || o.files === null) return `"files" is missing`;
  if (o.shards !== undefined && !(Number.isSafeInteger(o.shards) && o.shards >= 1)) return `"shards" is ${JSON.stringify(o.shards)}, not a world size >= 1`;
  for (const name of manifestCovers(o)) {
    const e = o.files[name];
    if (!e) return `"files" does not list ${name}`;
    if (!Number.isSafeInteger(e.size) || typeof e.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256)) {
      return `"files"."${name}" is ${JSON.stringify(e)}, not {size, sha256}`;
    }
  }
  return o as CheckpointManifest;
}
