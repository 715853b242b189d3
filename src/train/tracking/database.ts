// database.ts: opening a runs database file: better-sqlite3 loaded lazily (a native module; nothing a
// browser loads reaches this file), WAL journaling and a busy timeout so several processes can log
// to one file, and errors that name the file when it is not SQLite. The schema is schema.ts's.

import { createRequire } from "node:module";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { RunsDbError } from "./errors.js";
import { migrate } from "./schema.js";

export type Db = BetterSqlite3.Database;


/** How long a writer waits for another process's lock before giving up (ms). */
const BUSY_TIMEOUT_MS = 10_000;

let driver: typeof BetterSqlite3 | undefined;

function loadDriver(): typeof BetterSqlite3 {
  // NOTE: required on first use, not imported: the native addon loads only when a run is tracked. It is an
  // optional dependency (it compiles from source where no prebuilt binary fits), so kiln installs without it.
  try {
    driver ??= createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;
  } catch (e) {
    throw new RunsDbError(`experiment tracking needs the optional dependency better-sqlite3 (npm install better-sqlite3@12), which did not load: ${(e as Error).message}`);
  }
  return driver;
}

/** Open (creating when `create`) the runs database at `file`, migrated to the current schema. */
export function openDb(file: string, opts: { create?: boolean } = {}): Db {
  const path = resolve(file);
  if (opts.create) mkdirSync(dirname(path), { recursive: true });
  else if (!existsSync(path)) throw new RunsDbError(`no runs database at ${path} (a tracked training run creates it)`);
  const Database = loadDriver();
  let db: Db;
  try {
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new RunsDbError(`cannot open runs database ${path}: ${(err as Error).message}`);
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // NOTE: WAL lets readers (kiln runs ...) proceed while a trainer writes, and writers from two
    // processes serialise on the lock instead of failing; it persists in the file once set.
    db.pragma("journal_mode = WAL");
    // NOTE: in WAL mode NORMAL still survives a crash of the process; only a power loss can drop the
    // last steps' metrics, and a step then skips the fsync that FULL would add to it.
    db.pragma("synchronous = NORMAL");
    migrate(db, path);
  } catch (err) {
    db.close();
    if (err instanceof RunsDbError) throw err;
    const e = err as { code?: string; message: string };
    if (e.code === "SQLITE_NOTADB") throw new RunsDbError(`${path} is not a kiln runs database: not an SQLite file (${e.message})`);
    throw new RunsDbError(`runs database ${path}: ${e.message}`);
  }
  return db;
}
