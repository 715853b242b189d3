// backends_command.ts: `kiln backends`: every backend kiln knows, whether it can start here (and
// why not), its device, which one auto-selection picks, and a numeric check on each available one.
// It owns the report (plain data, printed as JSON or as a table); the check itself is
// backend_check.ts, the registry and selection rules are src/backends/index.ts.

import type { BackendName, BackendProbe } from "../index.js";
import { BACKEND_NAMES, getBackend, probeBackends, selectBackend } from "../index.js";
import type { CheckResult } from "./backend_check.js";
import { CHECK_DESCRIPTION, checkBackend } from "./backend_check.js";
import type { Command } from "./command.js";
import { parseCommandArgs } from "./command.js";
import { formatPairs, formatTable } from "./table.js";

export interface BackendReport {
  readonly name: BackendName;
  readonly available: boolean;
  /** Why it cannot start (the registry's error message). */
  readonly reason?: string;
  readonly device?: string;
  readonly software?: boolean;
  readonly details?: Readonly<Record<string, string>>;
  readonly check?: CheckResult;
}

export interface BackendsReport {
  readonly backends: readonly BackendReport[];
  /** What auto-selection picks here, ignoring KILN_BACKEND. */
  readonly auto: BackendName;
  /** KILN_BACKEND as set (null when unset), and what it selects or why it cannot. */
  readonly env: { readonly KILN_BACKEND: string | null; readonly selected?: BackendName; readonly error?: string };
  readonly check: string;
  /** Every available backend passed its check and KILN_BACKEND (if set) names a usable backend. */
  readonly ok: boolean;
}

const HELP = `Usage: kiln backends [--json]

List every backend kiln knows (${BACKEND_NAMES.join(", ")}): whether it can start on this machine and,
if not, why; its device and whether that device is software; which backend auto-selection picks.
Each available backend runs a check:
  ${CHECK_DESCRIPTION}.

Auto-selection prefers hardware: cuda, then webgpu on a real GPU adapter, then cpu. A software
WebGPU adapter (SwiftShader, llvmpipe) ranks below cpu. KILN_BACKEND=cuda|webgpu|cpu|auto overrides it.

Options:
  --json      print the report as JSON (for tools) instead of a table
  -h, --help  show this help

Exit status: 0 when every available backend passes its check, 1 when a check fails or
KILN_BACKEND names a backend that cannot start, 2 on a usage error.`;

async function buildReport(): Promise<BackendsReport> {
  const probes: BackendProbe[] = await probeBackends();
  const backends: BackendReport[] = [];
  // NOTE: one backend at a time, so the timings are not shared between devices.
  for (const p of probes) {
    if (!p.available) {
      backends.push({ name: p.name, available: false, reason: p.reason ?? "unknown reason" });
      continue;
    }
    const check = await checkBackend(await getBackend(p.name));
    backends.push({ name: p.name, available: true, device: p.info!.device, software: p.info!.software, details: p.info!.details, check });
  }
  const auto = (await selectBackend("auto")).name;
  const raw = process.env.KILN_BACKEND || null;
  let env: BackendsReport["env"] = { KILN_BACKEND: raw };
  if (raw !== null) {
    try {
      env = { KILN_BACKEND: raw, selected: (await selectBackend(raw as BackendName | "auto")).name };
    } catch (err) {
      env = { KILN_BACKEND: raw, error: (err as Error).message };
    }
  }
  const ok = backends.every((b) => !b.available || b.check?.pass) && env.error === undefined;
  return { backends, auto, env, check: CHECK_DESCRIPTION, ok };
}

const ms = (x: number): string => (Number.isNaN(x) ? "-" : `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms`);

function formatReport(r: BackendsReport): string {
  const rows = r.backends.map((b) => {
    if (!b.available) return [b.name, "unavailable", "-", "-", "-", "-", "-", "-"];
    const c = b.check!;
    const err = Number.isNaN(c.maxAbsError) ? "-" : c.maxAbsError.toExponential(1);
    return [b.name, "available", b.software ? "software" : "hardware", c.pass ? "pass" : "FAIL", err, ms(c.firstMs), ms(c.warmMs), b.device ?? ""];
  });
  const table = formatTable(["BACKEND", "STATUS", "KIND", "CHECK", "MAX ABS ERR", "FIRST RUN", "WARM RUN", "DEVICE"], rows);
  const width = Math.max(...r.backends.map((b) => b.name.length));
  const blocks = r.backends.map((b) => {
    const head = `${b.name.padEnd(width)}  `;
    if (!b.available) return `${head}unavailable: ${b.reason!.replace(/\n/g, `\n${" ".repeat(width + 2)}`)}`;
    const lines = [`${head}${b.device}`];
    if (b.details && Object.keys(b.details).length > 0) lines.push(formatPairs(b.details, width + 4));
    if (b.check?.error) lines.push(`${" ".repeat(width + 4)}${b.check.error}`);
    return lines.join("\n");
  });
  const available = r.backends.filter((b) => b.available).length;
  const envLine =
    r.env.KILN_BACKEND === null
      ? `unset (set it to ${BACKEND_NAMES.join(", ")} or auto to override auto-selection)`
      : r.env.error !== undefined
        ? `${r.env.KILN_BACKEND}: ERROR: ${r.env.error}`
        : `${r.env.KILN_BACKEND} -> ${r.env.selected} (overrides auto-selection)`;
  return [
    `kiln backends: ${r.backends.length} known, ${available} available`,
    "",
    table,
    "",
    blocks.join("\n"),
    "",
    `check:          ${r.check}`,
    `auto-selection: ${r.auto} (cuda, then webgpu on a hardware adapter, then cpu; software adapters rank below cpu)`,
    `KILN_BACKEND:   ${envLine}`,
  ].join("\n");
}

export const backendsCommand: Command = {
  name: "backends",
  summary: "list backends, why any is unavailable, which one is picked, and check each one",
  help: HELP,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    const report = await buildReport();
    console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.ok ? 0 : 1;
  },
};
