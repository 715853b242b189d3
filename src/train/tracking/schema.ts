// schema.ts: the runs database's tables and their versions. The version lives in SQLite's
// user_version; each migration moves it up by one inside an immediate transaction, so two processes
// that open a new file at once migrate it once. A file from a newer kiln is refused, by name.

import type { Db } from "./database.js";
import { RunsDbError } from "./errors.js";

/** Each entry takes the schema from version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     created INTEGER NOT NULL,
     config TEXT NOT NULL,
     seed INTEGER,
     code_version TEXT NOT NULL,
     backend TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'killed')),
     ended INTEGER
   );
   CREATE TABLE metrics (
     run TEXT NOT NULL REFERENCES runs(id),
     step INTEGER NOT NULL,
     key TEXT NOT NULL,
     value REAL,
     PRIMARY KEY (run, key, step)
   ) WITHOUT ROWID;
   CREATE TABLE artifacts (
     run TEXT NOT NULL REFERENCES runs(id),
     step INTEGER,
     kind TEXT NOT NULL,
     path TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     created INTEGER NOT NULL
   );
   CREATE INDEX artifacts_run ON artifacts (run, step);`,
  // 2: text the model generated at an evaluation (eval.sample), one per step.
  `CREATE TABLE samples (
     run TEXT NOT NULL REFERENCES runs(id),
     step INTEGER NOT NULL,
     prompt TEXT NOT NULL,
     text TEXT NOT NULL,
     PRIMARY KEY (run, step)
   ) WITHOUT ROWID;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

function version(db: Db): number {
  return db.pragma("user_version", { simple: true }) as number;
}

function checkNotNewer(v: number, path: string): void {
  if (v > SCHEMA_VERSION) {
    throw new RunsDbError(`${path} has runs schema version ${v}, newer than this kiln's ${SCHEMA_VERSION}: open it with a newer kiln`);
  }
}

/** Bring `db` to SCHEMA_VERSION. */
export function migrate(db: Db, path: string): void {
  const v = version(db);
  checkNotNewer(v, path);
  if (v === SCHEMA_VERSION) return;
  db.transaction(() => {
    // NOTE: re-read under the write lock: another process may have migrated since the first read.
    const now = version(db);
    checkNotNewer(now, path);
    for (let i = now; i < SCHEMA_VERSION; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
