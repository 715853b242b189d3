// train_checkpoint_child.ts: a process for train_checkpoint_faults.test.ts to kill in the middle of a
// checkpoint write. It writes step STEP of the test state under ROOT through a disk that pauses after
// each write and prints `write N` when write N has reached the file, so the test can SIGKILL it with a
// half-written temp folder on disk. Run: node --import tsx train_checkpoint_child.ts ROOT STEP

import { nodeCheckpointFs, writeCheckpoint } from "../../src/train/checkpoint/index.js";
import type { CheckpointFs } from "../../src/train/checkpoint/index.js";
import { tinyState } from "./train_checkpoint_helpers.js";

const [root, step] = process.argv.slice(2);
const real = nodeCheckpointFs();
let n = 0;
const slow: CheckpointFs = {
  ...real,
  async create(path) {
    const file = await real.create(path);
    return {
      ...file,
      async write(b) {
        await file.write(b);
        process.stdout.write(`write ${++n}\n`);
        await new Promise((r) => setTimeout(r, 300));
      },
    };
  },
};
await writeCheckpoint(root!, tinyState(Number(step), 256), { fs: slow });
process.stdout.write("done\n");
