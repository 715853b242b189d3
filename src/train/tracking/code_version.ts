// code_version.ts: which code a run ran, for its record: `git describe` of the working tree the
// process started in (with -dirty when it has uncommitted changes), else kiln's package version.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return `kiln ${pkg.version ?? "unknown"}`;
  } catch {
    return "kiln unknown";
  }
}

/** `git describe --always --dirty` in `cwd`, or `kiln <version>` where there is no git or no repository. */
export function codeVersion(cwd: string = process.cwd()): string {
  try {
    const out = execFileSync("git", ["describe", "--always", "--dirty", "--tags"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 });
    const v = out.trim();
    if (v) return `git ${v}`;
  } catch {
    // NOTE: no git, or not a repository (an npm install): the package version is what identifies the code.
  }
  return packageVersion();
}
