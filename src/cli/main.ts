// main.ts: the `kiln` command's entry: global flags, choosing the subcommand, usage errors and
// the exit code. Each subcommand lives in its own file and parses its own flags. Run it through
// bin/kiln.mjs (`npx kiln`, `npm run kiln --`), which prepares the environment native code reads.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { backendsCommand } from "./backends_command.js";
import { benchCommand } from "./bench_serve_command.js";
import { checkpointCommand } from "./checkpoint_command.js";
import { generateCommand } from "./generate_command.js";
import { launchCommand } from "./launch_command.js";
import { convertCommand } from "./convert_command.js";
import { perplexityCommand } from "./perplexity_command.js";
import { quantizeCommand } from "./quantize_command.js";
import { dataCommand } from "./data_command.js";
import { exportCommand } from "./export_command.js";
import { planCommand } from "./plan_command.js";
import { runsCommand } from "./runs_command.js";
import { serveCommand } from "./serve_command.js";
import { tokenizerCommand } from "./tokenizer_command.js";
import { trainCommand } from "./train_command.js";
import type { Command } from "./command.js";
import { EXIT_USAGE, UsageError } from "./command.js";

const COMMANDS: readonly Command[] = [
  backendsCommand, benchCommand, checkpointCommand, convertCommand, dataCommand, exportCommand, generateCommand, launchCommand, serveCommand, planCommand, runsCommand,
  tokenizerCommand, trainCommand, quantizeCommand, perplexityCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), "help".length);
  const list = [...COMMANDS.map((c) => [c.name, c.summary]), ["help", "show help for a command (kiln help <command>)"]]
    .map(([name, summary]) => `  ${name!.padEnd(width)}  ${summary}`)
    .join("\n");
  return `Usage: kiln <command> [options]

Commands:
${list}

Options:
  -h, --help     show this help (kiln <command> --help for a command's own)
  -v, --version  print kiln's version

Environment:
  KILN_BACKEND=cuda|webgpu|cpu|auto  the backend to use instead of auto-selection
  KILN_DEBUG=1..4                    print the schedule (1), generated source (2), launches (3), timings (4)
  KILN_PROFILE=1                     time the launches of replayed (jit) steps, printed per kernel at exit`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function findCommand(name: string): Command {
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(", ")}, help)`);
  return cmd;
}

async function main(argv: readonly string[]): Promise<number> {
  // Global flags come before the command; everything after it belongs to the command.
  const at = argv.findIndex((a) => !a.startsWith("-"));
  const globals = at < 0 ? argv : argv.slice(0, at);
  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...globals],
      options: { help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } },
      strict: true,
    }));
  } catch (err) {
    const hint = at < 0 ? "" : " (a command's options go after its name)";
    throw new UsageError(`${(err as Error).message.split(". ")[0]!.replace(/\.$/, "")}${hint}`);
  }
  if (values.version) {
    console.log(version());
    return 0;
  }
  if (values.help) {
    console.log(usage());
    return 0;
  }
  if (at < 0) throw new UsageError("no command given");
  const [name, ...rest] = argv.slice(at);
  if (name === "help") {
    if (rest.length > 1) throw new UsageError(`help: takes at most one command, got ${rest.join(" ")}`);
    console.log(rest[0] === undefined ? usage() : findCommand(rest[0]).help);
    return 0;
  }
  return findCommand(name!).run(rest);
}

async function run(): Promise<number> {
  try {
    return await main(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`kiln: ${err.message}\n`);
      console.error(err.command ? err.command.help : usage());
      return EXIT_USAGE;
    }
    console.error(`kiln: ${(err as Error).stack ?? String(err)}`);
    return 1;
  }
}

const code = await run();
// NOTE: exit explicitly once stdout has drained: a started Dawn instance can keep the event loop
// alive after the command is done, and the write callback makes sure piped output is complete.
process.stdout.write("", () => process.exit(code));
