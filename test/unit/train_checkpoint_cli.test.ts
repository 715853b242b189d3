// train_checkpoint_cli.test.ts: `kiln checkpoint verify`: once end to end through bin/kiln.mjs (a run's
// root with a corrupted newest checkpoint exits 1, prints each problem under its checkpoint and names
// the one a resume would use), the rest in process (a process start costs seconds): a good checkpoint
// exits 0, --json gives the reports as data, a missing folder exits 1, usage mistakes exit 2.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { checkpointCommand } from "../../src/cli/checkpoint_command.js";
import { UsageError } from "../../src/cli/command.js";
import { writeCheckpoint } from "../../src/train/checkpoint/index.js";
import { kiln } from "../helpers/kiln_cli.js";
import { scratch, tinyState } from "./train_checkpoint_helpers.js";

let dir: string;
let done: () => void;
beforeAll(async () => {
  ({ dir, done } = scratch());
  await writeCheckpoint(dir, tinyState(10));
  await writeCheckpoint(dir, tinyState(20));
  const model = `${dir}/step-000020/model.safetensors`;
  const data = readFileSync(model);
  data[data.length - 1]! ^= 0x80;
  writeFileSync(model, data);
  mkdirSync(`${dir}/.step-000030.tmp-77`);
});
afterAll(() => done());

/** Runs the command in this process (fast); resolves to its exit code and what it printed. */
async function verify(...args: string[]): Promise<{ code: number; stdout: string }> {
  const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
  try {
    const code = await checkpointCommand.run(["verify", ...args]);
    return { code, stdout: log.mock.calls.map((c) => `${String(c[0])}\n`).join("") };
  } finally {
    log.mockRestore();
  }
}

describe("kiln checkpoint verify", () => {
  it("through bin/kiln.mjs: a root with a corrupted newest checkpoint exits 1, names the problem and the checkpoint a resume would use", async () => {
    const { code, stdout, stderr } = await kiln("checkpoint", "verify", dir);
    expect(stderr).toBe("");
    expect(stdout).toContain(`FAILED  ${dir}/step-000020 (step 20)\n        model.safetensors: sha256`);
    expect(stdout).toContain(`ok      ${dir}/step-000010 (step 10)\n`);
    expect(stdout).toContain(`resume would use ${dir}/step-000010\n`);
    expect(code).toBe(1);
  });

  it("a good checkpoint: exit 0, reported ok with its step", async () => {
    expect(await verify(`${dir}/step-000010`)).toEqual({ code: 0, stdout: `ok      ${dir}/step-000010 (step 10)\n` });
  });

  it("--json: one report per checkpoint and partial write, newest first, each problem named", async () => {
    const { code, stdout } = await verify(dir, "--json");
    expect(code).toBe(1);
    const reports = JSON.parse(stdout) as { dir: string; step?: number; ok: boolean; problems: string[] }[];
    expect(reports.map((r) => [r.dir, r.ok])).toEqual([
      [`${dir}/step-000020`, false],
      [`${dir}/step-000010`, true],
      [`${dir}/.step-000030.tmp-77`, false],
    ]);
    expect(reports[0]!.problems).toHaveLength(1);
    expect(reports[0]!.problems[0]).toMatch(/^model\.safetensors: sha256 .* \(the file is corrupted\)$/);
    expect(reports[2]!.problems[0]).toContain("is a partial write");
  });

  it("a folder that does not exist exits 1 saying so", async () => {
    expect(await verify(`${dir}/nope`)).toEqual({ code: 1, stdout: `FAILED  ${dir}/nope\n        ${dir}/nope does not exist or is not a folder\n` });
  });

  it("usage mistakes are UsageErrors (exit 2) naming what is wrong", async () => {
    await expect(verify()).rejects.toThrow(UsageError);
    await expect(verify()).rejects.toThrow("checkpoint verify: takes one DIR, got 0");
    await expect(checkpointCommand.run(["check", dir])).rejects.toThrow("checkpoint: unknown subcommand 'check' (verify)");
    await expect(verify(dir, "--bogus")).rejects.toThrow("checkpoint: Unknown option '--bogus'");
  });
});
