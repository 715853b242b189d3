// command.ts: what a `kiln` subcommand is (name, help text, run) and how it reads its flags.
// It owns the usage-error convention (exit code 2, message + usage); it does not know any
// particular command (those live in their own files) or the top-level dispatch (main.ts).

import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { parseThreadCount } from "../index.js";

export interface Command {
  readonly name: string;
  /** One line for `kiln --help`. */
  readonly summary: string;
  /** The full text of `kiln <name> --help`. */
  readonly help: string;
  /** Run with the arguments after the command's name; resolves to the exit code. */
  run(argv: readonly string[]): Promise<number>;
}

/** A mistake in how kiln was called: printed with the relevant usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: Command) {
    super(message);
  }
}

export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig["options"]>;
// NOTE: named so that `npm run build` can write this file's declaration (node:util does not export the result type).
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>;

type ParsedWithPositionals<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>>;

/** parseArgs in strict mode, with its errors turned into UsageErrors that name the command. */
export function parseCommandArgs<O extends Options>(cmd: Command, argv: readonly string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw usageOf(cmd, err);
  }
}

/** parseCommandArgs for a command that takes positional arguments too (`kiln quantize IN OUT`). */
export function parseCommandArgsWithPositionals<O extends Options>(cmd: Command, argv: readonly string[], options: O): ParsedWithPositionals<O> {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    throw usageOf(cmd, err);
  }
}

function usageOf(cmd: Command, err: unknown): UsageError {
  // NOTE: node's messages are good ("Unknown option '--x'"), but they carry a long hint about
  // '--' for positionals; keep the first sentence.
  const msg = (err as Error).message.split(". ")[0]!.replace(/\.$/, "");
  return new UsageError(`${cmd.name}: ${msg}`, cmd);
}

/**
 * The arguments after `cmd`'s only subcommand `sub` (as in `kiln data prepare ...`), or undefined when
 * the first argument asked for help, which is then printed. A missing or other subcommand is a UsageError.
 */
export function subcommandArgs(cmd: Command, argv: readonly string[], sub: string): string[] | undefined {
  const [first, ...rest] = argv;
  if (first === "-h" || first === "--help") {
    console.log(cmd.help);
    return undefined;
  }
  if (first === undefined) throw new UsageError(`${cmd.name}: no subcommand given (${sub})`, cmd);
  if (first !== sub) throw new UsageError(`${cmd.name}: unknown subcommand '${first}' (${sub})`, cmd);
  return rest;
}

/** The --threads flag of the commands that run a model (generate, serve, bench serve): option and help line. */
export const THREADS_OPTION = { threads: { type: "string" } } as const;
export const THREADS_HELP = "threads of the cpu backend (default: KILN_THREADS, else the physical cores)";

/**
 * Applies --threads: sets KILN_THREADS for this process (read when the cpu backend starts its pool, so call
 * this before choosing a backend) and for the processes it starts. A bad value is a UsageError naming the flag.
 */
export function applyThreadsFlag(cmd: Command, value: string | undefined): void {
  if (value === undefined) return;
  try {
    process.env.KILN_THREADS = String(parseThreadCount(value, "--threads"));
  } catch (err) {
    throw new UsageError(`${cmd.name}: ${(err as Error).message}`, cmd);
  }
}
