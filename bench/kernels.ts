// kernels.ts is the kernel benchmark's command line (`npm run bench:kernels`): it picks the backends,
// runs the suite on each (bench/lib/suite.ts), writes bench/results/kernels-<backend>-<tag>.json and
// .md and prints the tables. With --from it only renders tables from results files made elsewhere.
//
//   npx tsx bench/kernels.ts [--backend cpu|webgpu|cuda|all] [--quick] [--out bench/results] [--tag NAME]
//   npx tsx bench/kernels.ts --from bench/results/kernels-webgpu-amd-epyc-2c.json [--from ...] [--out DIR]
//
// NOTE: WebGPU without a GPU needs VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json on the
// command line; it is not set here, because on a GPU machine it would hide the real GPU.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Backend, BackendName } from "../src/index.js";
import { getBackend } from "../src/index.js";
import { parseBenchArgs } from "./lib/args.js";
import { machineInfo } from "./lib/machine.js";
import { fmt3, renderMarkdown } from "./lib/markdown.js";
import type { KernelResults } from "./lib/results.js";
import { parseResults, resultsBaseName } from "./lib/results.js";
import { profileFor, runSuite } from "./lib/suite.js";
import { FULL_POLICY, QUICK_POLICY } from "./lib/timing.js";

interface Args {
  readonly backends: readonly BackendName[];
  readonly quick: boolean;
  readonly out: string;
  readonly tag?: string;
  readonly from: readonly string[];
}

const USAGE = "usage: tsx bench/kernels.ts [--backend cpu|webgpu|cuda|all] [--quick] [--out DIR] [--tag NAME] [--from RESULTS.json ...]";

function parseCliArgs(argv: readonly string[]): Args {
  const a = parseBenchArgs(argv, USAGE, ["from"]);
  return { ...a, from: a.lists.from ?? [] };
}

function write(dir: string, r: KernelResults, md: string, json: boolean): void {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, resultsBaseName(r));
  if (json) writeFileSync(`${base}.json`, JSON.stringify(r, null, 2) + "\n");
  writeFileSync(`${base}.md`, md);
  console.log(`wrote ${json ? `${base}.json and ` : ""}${base}.md`);
}

async function bench(args: Args): Promise<number> {
  const machine = machineInfo(args.tag);
  let ran = 0;
  for (const name of args.backends) {
    let backend: Backend;
    try {
      backend = await getBackend(name);
    } catch (err) {
      console.log(`${name}: skipped: ${(err as Error).message}\n`);
      continue;
    }
    const profile = profileFor(backend);
    console.log(`${name}: ${backend.info.device}, sizes ${profile.name}${args.quick ? ", quick" : ""}`);
    const results = await runSuite(backend, {
      profile, policy: args.quick ? QUICK_POLICY : FULL_POLICY, quick: args.quick, machine,
      onResult: (c) => console.log(`  ${c.name} ${c.dtype} ${c.variant}: ${fmt3(c.medianMs)} ms, ${fmt3(c.throughput)} ${c.unit} (${c.reps} runs)`),
    });
    const md = renderMarkdown(results);
    console.log(`\n${md}`);
    write(args.out, results, md, true);
    console.log("");
    ran++;
  }
  return ran > 0 ? 0 : 1;
}

function renderFrom(args: Args): number {
  for (const file of args.from) {
    const results = parseResults(readFileSync(file, "utf8"), basename(file));
    const md = renderMarkdown(results);
    console.log(md);
    write(args.out, results, md, false);
  }
  return 0;
}

try {
  const args = parseCliArgs(process.argv.slice(2));
  const code = args.from.length > 0 ? renderFrom(args) : await bench(args);
  // NOTE: exit explicitly: a started GPU device keeps Node's event loop alive.
  process.exit(code);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
