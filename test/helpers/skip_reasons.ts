// skip_reasons.ts: the words of a skip. A test skips only where this machine lacks hardware or system
// software (a WebGPU adapter, chromium, nvcc, a GPU); its reason says which, why, and what turns it on,
// and goes at the end of the test's or its suite's name as " (skipped: <reason>)". The skip reporter
// (skip_reporter.ts) reads the reasons back from the names for its summary and, under CI=true, fails
// the run on a skip CI does not expect. Detecting what is missing is requirements.ts's job.

export interface Requirement {
  /** How a reason for this requirement starts. */
  readonly missing: string;
  /** What turns the skipped tests on. */
  readonly fix: string;
  /** Whether CI has it (.ci/run installs chromium and libvulkan1): there a skip for it fails the run. */
  readonly inCi: boolean;
}

export const REQUIREMENTS = {
  webgpu: { missing: "no WebGPU adapter", fix: "install Debian's chromium (SwiftShader) and libvulkan1", inCi: true },
  subgroups: { missing: "no WebGPU subgroups", fix: "a WebGPU adapter with subgroups (SwiftShader has them)", inCi: true },
  chromium: { missing: "no chromium", fix: "install Debian's chromium", inCi: true },
  npm: { missing: "no npm", fix: "install npm (it comes with Node)", inCi: true },
  nvcc: { missing: "no nvcc", fix: "install the CUDA toolkit (nvcc on PATH)", inCi: false },
  cxx: { missing: "no C++20 compiler", fix: "install g++ (Debian's build-essential; CI has it for better-sqlite3)", inCi: true },
  gpu: { missing: "no hardware GPU", fix: "run on a machine with a GPU", inCi: false },
  sqlite: { missing: "no better-sqlite3", fix: "a C++ toolchain and python3 for npm ci to build the optional better-sqlite3", inCi: true },
  unshare: { missing: "no private mount namespace", fix: "run as root, or where unshare -rm is allowed", inCi: false },
  numpy: { missing: "no python3 with numpy", fix: "install Debian's python3-numpy", inCi: true },
  llamacpp: { missing: "no node-llama-cpp", fix: "npm run peer:install (into ~/.cache/kiln-peers, or $KILN_PEER_DIR), or set KILN_NODE_LLAMA_CPP to a node_modules/node-llama-cpp", inCi: false },
  tmpfs: { missing: "no tmpfs mount", fix: "run as root where mount(8) is allowed (ENOSPC is also tested by injection)", inCi: false },
} as const satisfies Record<string, Requirement>;

export type RequirementName = keyof typeof REQUIREMENTS;

/** The reason a test skips for want of `name`: what is missing, `detail` (why), and what turns it on. */
export function missingReason(name: RequirementName, detail: string): string {
  const r = REQUIREMENTS[name];
  return `${r.missing} (${detail}) — ${r.fix}`;
}

/** The reason for a WebGPU backend or adapter that failed to start with `err`. */
export function noWebgpu(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return missingReason("webgpu", message.replace(/^no WebGPU adapter: /, ""));
}

/** The reason for a backend that did not start (`missing`: its error), as the conformance harness lists them. */
export function noBackend(name: string, missing: string | undefined): string | undefined {
  if (missing === undefined) return undefined;
  return name === "webgpu" ? noWebgpu(missing) : `no ${name} backend (${missing})`;
}

const OPEN = " (skipped: ";

/** The tail of a test or suite name: " (skipped: <reason>)" when there is a reason, else "". */
export function skipLabel(reason: string | undefined): string {
  return reason ? `${OPEN}${reason})` : "";
}

/** The reason skipLabel() put at the end of `name`, if any. */
export function reasonInName(name: string): string | undefined {
  const at = name.indexOf(OPEN);
  return at >= 0 && name.endsWith(")") ? name.slice(at + OPEN.length, -1) : undefined;
}

/** `name` (a full name: suites and test joined by " > ") without its skip labels, to print it shorter. */
export function withoutLabels(name: string): string {
  return name.split(" > ").map((part) => (reasonInName(part) === undefined ? part : part.slice(0, part.indexOf(OPEN)))).join(" > ");
}

/** Which requirement a reason is for, if it is one of REQUIREMENTS'. */
export function requirementOf(reason: string): RequirementName | undefined {
  return (Object.keys(REQUIREMENTS) as RequirementName[]).find((k) => reason.startsWith(`${REQUIREMENTS[k].missing} (`));
}
