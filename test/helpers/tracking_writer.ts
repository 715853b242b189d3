// tracking_writer.ts: a second process that logs a run to a runs database, for the concurrent-writer
// test: `node --import tsx tracking_writer.ts DB NAME STEPS WRITERS`. It marks itself ready beside DB
// and waits until WRITERS writers are, so they begin together whatever their start-up times. Each
// step logs five metrics in one transaction, 2 ms apart; it prints the run id on success.

import { readdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { RunStore } from "../../src/train/tracking/run_store.js";

const [db, name, steps, writers] = process.argv.slice(2);
writeFileSync(`${db}.${name}.ready`, "");
while (readdirSync(dirname(db!)).filter((f) => f.endsWith(".ready")).length < Number(writers)) await new Promise((r) => setTimeout(r, 5));
const store = RunStore.open(db!, { create: true });
const run = store.startRun({ name: name!, config: { writer: name }, seed: 1, backend: "cpu", codeVersion: "test" });
for (let s = 0; s < Number(steps); s++) {
  run.log(s, { loss: 1 / (s + 1), lr: 1e-3, grad_norm: s, tokens_per_s: 100 + s, mfu: 0.1 });
  // NOTE: a pause between steps, as a trainer has, stretches the run so the two writers overlap.
  await new Promise((r) => setTimeout(r, 2));
}
run.finish("finished");
store.close();
console.log(run.id);
