// launch_emit.test.ts: `kiln launch --emit k8s` and `--emit slurm`. The Kubernetes YAML is parsed and
// held to the fields the Job and Service schemas require (the minimal checks below, kubectl-free;
// the checks are themselves shown to catch a broken manifest); the sbatch script's directives are
// read back and its syntax checked by bash. Then each is run on this host the way the cluster would:
// the pods' commands with $(VAR) expanded as the kubelet does, and the sbatch script under bash with
// stand-ins for srun and scontrol (the Slurm commands; kiln launch itself and the ranks are real).

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Document } from "yaml";
import { parseAllDocuments } from "yaml";
import { KILN_BIN } from "../helpers/kiln_cli.js";
import { killGroups, start } from "../helpers/launch_procs.js";

/** A rank that prints its place and its first argument as JSON. */
const RANK_SCRIPT = `console.log(JSON.stringify({ rank: process.env.RANK, world: process.env.WORLD_SIZE, local: process.env.LOCAL_RANK, node: process.env.GROUP_RANK, master: process.env.MASTER_ADDR + ":" + process.env.MASTER_PORT, arg: process.argv[1] }))`;
/** An argument both shells and the kubelet would read something into, were it not escaped. */
const TRICKY = `it's $HOME $(JOB_COMPLETION_INDEX) "q"`;

const kilnLaunch = (...args: string[]) => start(process.execPath, [KILN_BIN, "launch", ...args], 30_000);

type Obj = Record<string, unknown>;
const at = (o: unknown, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (v as Obj | undefined)?.[k], o);

/** The fields a v1 Service must have to be accepted, and a headless one's (clusterIP None). */
function serviceProblems(s: Obj): string[] {
  const p: string[] = [];
  if (s.apiVersion !== "v1") p.push("apiVersion is not v1");
  if (s.kind !== "Service") p.push("kind is not Service");
  if (typeof at(s, "metadata.name") !== "string") p.push("metadata.name missing");
  if (at(s, "spec.clusterIP") !== "None") p.push("spec.clusterIP is not None (not headless)");
  const ports = at(s, "spec.ports");
  if (!Array.isArray(ports) || ports.length === 0 || !ports.every((x: Obj) => Number.isInteger(x.port) && (x.port as number) > 0 && (x.port as number) < 65536)) {
    p.push("spec.ports missing or a port is not 1-65535");
  }
  if (typeof at(s, "spec.selector") !== "object") p.push("spec.selector missing");
  return p;
}

/** The fields a batch/v1 Indexed Job must have to be accepted (apiserver validation's required ones). */
function indexedJobProblems(j: Obj): string[] {
  const p: string[] = [];
  if (j.apiVersion !== "batch/v1") p.push("apiVersion is not batch/v1");
  if (j.kind !== "Job") p.push("kind is not Job");
  if (typeof at(j, "metadata.name") !== "string") p.push("metadata.name missing");
  if (at(j, "spec.completionMode") !== "Indexed") p.push("spec.completionMode is not Indexed");
  const completions = at(j, "spec.completions");
  if (!Number.isInteger(completions) || (completions as number) < 1) p.push("spec.completions is not a positive integer (Indexed needs it)");
  if (at(j, "spec.parallelism") !== completions) p.push("spec.parallelism differs from spec.completions");
  if (!["Never", "OnFailure"].includes(at(j, "spec.template.spec.restartPolicy") as string)) p.push("spec.template.spec.restartPolicy is not Never or OnFailure");
  const containers = at(j, "spec.template.spec.containers");
  if (!Array.isArray(containers) || containers.length === 0) return [...p, "spec.template.spec.containers missing"];
  const c = containers[0] as Obj;
  if (typeof c.name !== "string" || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(c.name)) p.push("containers[0].name is not a DNS label");
  if (typeof c.image !== "string" || c.image === "") p.push("containers[0].image missing");
  if (!Array.isArray(c.command) || !c.command.every((x) => typeof x === "string")) p.push("containers[0].command is not a list of strings");
  for (const e of (c.env ?? []) as Obj[]) if (typeof e.name !== "string" || (e.value === undefined) === (e.valueFrom === undefined)) p.push(`env ${String(e.name)} needs exactly one of value, valueFrom`);
  return p;
}

/** $(VAR) and $$ in a container command, expanded as the kubelet does (an unknown $(VAR) stays). */
function kubeletExpand(arg: string, env: Readonly<Record<string, string>>): string {
  return arg.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (name === undefined ? "$" : env[name] ?? m));
}

/** The JSON lines the ranks printed, sorted by rank. */
function rankLines(stdout: string): Obj[] {
  return stdout.split("\n").filter((l) => l.includes("{")).map((l) => JSON.parse(l.slice(l.indexOf("{"))) as Obj).sort((a, b) => Number(a.rank) - Number(b.rank));
}

afterEach(() => killGroups());

describe("kiln launch --emit k8s", () => {
  const args = ["--emit", "k8s", "--nproc", "2", "--nnodes", "2", "--name", "llama-ft", "--image", "ghcr.io/me/kiln:0.1", "--gpus-per-node", "8",
    "--master-port", "29600", "--", process.execPath, "-e", RANK_SCRIPT, TRICKY];

  it("prints a headless Service and an Indexed Job that pass the schema checks", async () => {
    const { code, stdout, stderr } = await kilnLaunch(...args).ended;
    expect(code, stderr).toBe(0);
    const docs = parseAllDocuments(stdout);
    expect(Array.isArray(docs), "a YAML stream of documents").toBe(true);
    expect((docs as Document[]).flatMap((d) => d.errors)).toEqual([]);
    expect(docs).toHaveLength(2);
    const [service, job] = (docs as Document[]).map((d) => d.toJS() as Obj);
    expect(serviceProblems(service!)).toEqual([]);
    expect(indexedJobProblems(job!)).toEqual([]);

    expect(at(service, "metadata.name")).toBe("llama-ft");
    expect(at(service, "spec.selector")).toEqual({ "job-name": "llama-ft" });
    expect(at(service, "spec.ports")).toEqual([{ name: "rendezvous", port: 29600, targetPort: 29600, protocol: "TCP" }]);
    expect(at(job, "spec.completions")).toBe(2);
    // Pod <job>-0 is <job>-0.<service>: the subdomain is the Service's name.
    expect(at(job, "spec.template.spec.subdomain")).toBe("llama-ft");
    const c = (at(job, "spec.template.spec.containers") as Obj[])[0]!;
    expect(c.image).toBe("ghcr.io/me/kiln:0.1");
    expect(c.resources).toEqual({ limits: { "nvidia.com/gpu": 8 }, requests: { "nvidia.com/gpu": 8 } });
    expect((c.command as string[]).slice(0, 11)).toEqual([
      "kiln", "launch", "--nproc", "2", "--nnodes", "2", "--node-rank", "$(JOB_COMPLETION_INDEX)", "--master", "llama-ft-0.llama-ft:29600", "--",
    ]);
    expect(c.env).toEqual([{ name: "JOB_COMPLETION_INDEX", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } }]);
  });

  it("the schema checks catch a broken manifest", () => {
    const job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "x" },
      spec: { completionMode: "NonIndexed", completions: 2, parallelism: 3, template: { spec: { restartPolicy: "Always", containers: [{ name: "Kiln", command: "kiln" }] } } } };
    expect(indexedJobProblems(job)).toEqual([
      "spec.completionMode is not Indexed", "spec.parallelism differs from spec.completions", "spec.template.spec.restartPolicy is not Never or OnFailure",
      "containers[0].name is not a DNS label", "containers[0].image missing", "containers[0].command is not a list of strings",
    ]);
    expect(serviceProblems({ apiVersion: "v1", kind: "Service", metadata: { name: "x" }, spec: { selector: {}, ports: [{ port: 0 }] } }))
      .toEqual(["spec.clusterIP is not None (not headless)", "spec.ports missing or a port is not 1-65535"]);
  });

  it("its pods, run here with the kubelet's expansion, are ranks 0..3 of one job and get their arguments unchanged", async () => {
    const { stdout } = await kilnLaunch(...args).ended;
    const job = (parseAllDocuments(stdout) as Document[])[1]!.toJS() as Obj;
    const command = ((at(job, "spec.template.spec.containers") as Obj[])[0]!.command as string[]);
    expect(command[0]).toBe("kiln");
    const pods = [0, 1].map((index) => {
      const expanded = command.slice(1).map((a) => kubeletExpand(a, { JOB_COMPLETION_INDEX: String(index) }));
      return start(process.execPath, [KILN_BIN, ...expanded], 30_000).ended;
    });
    const ended = await Promise.all(pods);
    for (const e of ended) expect(e.code, e.stderr).toBe(0);
    const ranks = rankLines(ended.map((e) => e.stdout).join("\n"));
    expect(ranks).toEqual([0, 1, 2, 3].map((r) => ({
      rank: `${r}`, world: "4", local: `${r % 2}`, node: `${Math.floor(r / 2)}`, master: "llama-ft-0.llama-ft:29600", arg: TRICKY,
    })));
  });

  it("bad input: a missing image, a name that is no DNS label, a run-only flag", async () => {
    const cases: [string[], RegExp][] = [
      [["--emit", "k8s", "--nproc", "2", "--", "true"], /--emit k8s needs --image IMAGE/],
      [["--emit", "k8s", "--nproc", "2", "--image", "i", "--name", "Kiln_Job", "--", "true"], /--name "Kiln_Job" is not a DNS label/],
      [["--emit", "k8s", "--nproc", "2", "--image", "i", "--master", "h:1", "--", "true"], /--master is for running here, not with --emit/],
      [["--emit", "helm", "--nproc", "2", "--", "true"], /--emit "helm" is not k8s or slurm/],
      [["--emit", "slurm", "--nproc", "2", "--gpus-per-node", "0", "--", "true"], /--gpus-per-node "0" is not an integer >= 1/],
    ];
    const runs = await Promise.all(cases.map(([a]) => kilnLaunch(...a).ended));
    for (const [i, r] of runs.entries()) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    }
  });
});

describe("kiln launch --emit slurm", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-launch-slurm-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const args = ["--emit", "slurm", "--nproc", "2", "--nnodes", "2", "--name", "llama-ft", "--gpus-per-node", "4", "--master-port", "29601",
    "--", process.execPath, "-e", RANK_SCRIPT, TRICKY];

  it("prints an sbatch script with the job's directives that bash accepts", async () => {
    const { code, stdout, stderr } = await kilnLaunch(...args).ended;
    expect(code, stderr).toBe(0);
    expect(stdout.startsWith("#!/bin/bash\n")).toBe(true);
    const directives = stdout.split("\n").filter((l) => l.startsWith("#SBATCH ")).map((l) => l.slice("#SBATCH ".length));
    expect(directives).toEqual(["--job-name=llama-ft", "--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4"]);
    // sbatch stops reading directives at the first command: all of them come before it.
    const lines = stdout.split("\n");
    const firstCommand = lines.findIndex((l) => l.trim() !== "" && !l.startsWith("#"));
    expect(lines.slice(firstCommand).some((l) => l.startsWith("#SBATCH"))).toBe(false);
    expect(stdout).toContain('MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)');
    expect(stdout).toMatch(/^srun --nodes=2 --ntasks-per-node=1 bash -c 'exec kiln launch --nproc 2 --nnodes 2 --node-rank "\$SLURM_NODEID"/m);
    const script = join(dir, "job.sbatch");
    writeFileSync(script, stdout);
    const check = await start("bash", ["-n", script], 10_000).ended;
    expect(check.code, check.stderr).toBe(0);
  });

  it("run under bash with srun and scontrol stand-ins, its two nodes are ranks 0..3 with the first host as master", async () => {
    const { stdout } = await kilnLaunch(...args).ended;
    const bin = join(dir, "bin");
    const tool = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    mkdirSync(bin);
    // scontrol show hostnames LIST: two hosts, one per line, the first is this one.
    tool("scontrol", 'printf "localhost\\nnode-b\\n"');
    // srun --nodes=N --ntasks-per-node=1 CMD...: CMD once per node, at once, each with its SLURM_NODEID.
    tool("srun", 'n=${1#--nodes=}; shift 2; pids=(); for ((i = 0; i < n; i++)); do SLURM_NODEID=$i "$@" & pids+=($!); done; rc=0; for p in "${pids[@]}"; do wait "$p" || rc=$?; done; exit $rc');
    tool("kiln", `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(KILN_BIN)} "$@"`);
    const script = join(dir, "run.sbatch");
    writeFileSync(script, stdout);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, SLURM_JOB_NODELIST: "localhost,node-b" };
    const ran = await start("bash", [script], 45_000, env).ended;
    expect(ran.code, ran.stderr).toBe(0);
    expect(rankLines(ran.stdout)).toEqual([0, 1, 2, 3].map((r) => ({
      rank: `${r}`, world: "4", local: `${r % 2}`, node: `${Math.floor(r / 2)}`, master: "localhost:29601", arg: TRICKY,
    })));
  });
});
