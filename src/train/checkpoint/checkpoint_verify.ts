// checkpoint_verify.ts: checks one checkpoint folder against its manifest: every file present, of the
// size and sha256 the manifest records, state.json valid JSON of the same step, the safetensors
// headers readable; a temp folder left by an interrupted save is reported as a partial write. It
// reports every problem it finds, each naming the file and what is wrong; it changes nothing.

import { requireNodeBuiltin } from "../../core/host.js";
import { readSafetensorsHeader } from "../../models/formats/safetensors.js";
import { CHECKPOINT_FILES, CHECKPOINT_FORMAT_VERSION, baseName, joinPath, parseStepDir, parseTempDir } from "./checkpoint_layout.js";
import { manifestCovers, parseManifest } from "./checkpoint_manifest.js";

export interface VerifyReport {
  readonly dir: string;
  /** The step the manifest records (undefined when there is no readable manifest). */
  readonly step?: number;
  readonly ok: boolean;
  /** One line per problem, each naming the file; empty when ok. */
  readonly problems: readonly string[];
}

const CHUNK = 4 << 20;

/** The sha256 of a file, read in 4 MiB chunks. */
export function sha256File(path: string): string {
  const fs = requireNodeBuiltin("node:fs", "verifying a checkpoint");
  const hash = requireNodeBuiltin("node:crypto", "verifying a checkpoint").createHash("sha256");
  const fd = fs.openSync(path, "r");
  try {
    const buf = new Uint8Array(CHUNK);
    for (let n; (n = fs.readSync(fd, buf, 0, CHUNK, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/**
 * `only`: check just the covered files it accepts (the manifest is always read): ranks of a distributed
 * resume split the hashing of the shards between them (sharded_checkpoint_reader.ts resumeSharded).
 */
export function verifyCheckpoint(dir: string, only?: (file: string) => boolean): VerifyReport {
  const fs = requireNodeBuiltin("node:fs", "verifying a checkpoint");
  const fail = (problems: string[], step?: number): VerifyReport => ({ dir, step, ok: problems.length === 0, problems });
  const temp = parseTempDir(baseName(dir));
  if (temp) return fail([`${dir} is a partial write: the temporary folder of a save of step ${temp.step} (process ${temp.pid}) that did not finish`]);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return fail([`${dir} does not exist or is not a folder`]);
  const manifestPath = joinPath(dir, CHECKPOINT_FILES.manifest);
  if (!fs.existsSync(manifestPath)) return fail([`${CHECKPOINT_FILES.manifest} is missing (an incomplete checkpoint, or not a checkpoint folder)`]);
  const manifest = parseManifest(fs.readFileSync(manifestPath, "utf8"));
  if (typeof manifest === "string") return fail([`${CHECKPOINT_FILES.manifest}: ${manifest}`]);

  const problems: string[] = [];
  const named = parseStepDir(baseName(dir));
  if (named !== undefined && named !== manifest.step) problems.push(`${CHECKPOINT_FILES.manifest}: step ${manifest.step}, but the folder is named for step ${named}`);
  const intact = new Set<string>();
  const covers = manifestCovers(manifest).filter((n) => !only || only(n));
  for (const name of covers) {
    const path = joinPath(dir, name);
    const want = manifest.files[name]!;
    if (!fs.existsSync(path)) {
      problems.push(`${name} is missing`);
      continue;
    }
    const size = fs.statSync(path).size;
    if (size !== want.size) {
      problems.push(`${name} is ${size} bytes, the manifest says ${want.size} (truncated or overwritten)`);
      continue;
    }
    const sha = sha256File(path);
    if (sha !== want.sha256) {
      problems.push(`${name}: sha256 ${sha.slice(0, 16)}… does not match the manifest's ${want.sha256.slice(0, 16)}… (the file is corrupted)`);
      continue;
    }
    intact.add(name);
  }
  // NOTE: files whose checksum matches were written by kiln as they are; parsing them catches a checkpoint
  // written by a buggy writer, and gives a clear message instead of a failure at load time.
  if (intact.has(CHECKPOINT_FILES.state)) problems.push(...checkStateFile(joinPath(dir, CHECKPOINT_FILES.state), manifest.step));
  for (const name of covers.filter((n) => n !== CHECKPOINT_FILES.state)) {
    if (!intact.has(name)) continue;
    try {
      readSafetensorsHeader(joinPath(dir, name));
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  return fail(problems, manifest.step);
}

function checkStateFile(path: string, step: number): string[] {
  let state: { formatVersion?: unknown; step?: unknown };
  try {
    state = JSON.parse(requireNodeBuiltin("node:fs", "verifying a checkpoint").readFileSync(path, "utf8")) as typeof state;
  } catch (err) {
    return [`${CHECKPOINT_FILES.state}: not valid JSON (${(err as Error).message})`];
  }
  if (state.formatVersion !== CHECKPOINT_FORMAT_VERSION) return [`${CHECKPOINT_FILES.state}: formatVersion ${JSON.stringify(state.formatVersion)}, expected ${CHECKPOINT_FORMAT_VERSION}`];
  if (state.step !== step) return [`${CHECKPOINT_FILES.state}: step ${JSON.stringify(state.step)}, the manifest says ${step}`];
  return [];
}
