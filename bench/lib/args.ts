// args.ts: the flags every bench script shares (--backend, --quick, --out, --tag), parsed once.
// A script may add string-list flags of its own (kernels' --from).

import { parseArgs } from "node:util";
import type { BackendName } from "../../src/index.js";
import { BACKEND_NAMES } from "../../src/index.js";

export interface BenchArgs {
  /** cpu first when "all": its table is ready before a slow software GPU finishes. */
  readonly backends: readonly BackendName[];
  readonly quick: boolean;
  readonly out: string;
  readonly tag?: string;
  /** Values of each extra list flag, by name. */
  readonly lists: Readonly<Record<string, readonly string[]>>;
}

export function parseBenchArgs(argv: readonly string[], usage: string, listFlags: readonly string[] = []): BenchArgs {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        backend: { type: "string", default: "all" },
        quick: { type: "boolean", default: false },
        out: { type: "string", default: "bench/results" },
        tag: { type: "string" },
        ...Object.fromEntries(listFlags.map((f) => [f, { type: "string" as const, multiple: true as const }])),
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${usage}`);
  }
  const backend = values.backend as string;
  if (backend !== "all" && !BACKEND_NAMES.includes(backend as BackendName)) {
    throw new Error(`--backend must be all or one of ${BACKEND_NAMES.join(", ")}, got '${backend}'`);
  }
  const backends = backend === "all" ? [...BACKEND_NAMES].reverse() : [backend as BackendName];
  const lists = Object.fromEntries(listFlags.map((f) => [f, (values[f] as string[] | undefined) ?? []]));
  const tag = values.tag as string | undefined;
  return { backends, quick: values.quick as boolean, out: values.out as string, lists, ...(tag === undefined ? {} : { tag }) };
}
