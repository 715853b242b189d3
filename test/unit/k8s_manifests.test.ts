// k8s_manifests.test.ts: every cluster manifest kiln writes, held to the Kubernetes object schemas
// (test/helpers/k8s_schema.ts: field types, required fields, enums, unknown fields rejected, and the API
// server's own checks) and the sbatch directives to sbatch's documented options (sbatch_directives.ts),
// kubectl- and Slurm-free; both checkers are shown to fail on broken manifests. Then `kiln serve --emit
// k8s`'s pod is run here as the kubelet would run it, and probed where its probes and Prometheus' scrape
// annotations point: /health and /metrics must answer. Every process is killed after each test.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Document } from "yaml";
import { parseAllDocuments } from "yaml";
import { emitK8s, emitK8sServe, emitSlurm, freePort, k8sManifests, serveManifests } from "../../src/dist/index.js";
import type { ClusterJob, ServeDeployment } from "../../src/dist/index.js";
import { k8sProblems } from "../helpers/k8s_schema.js";
import { runServeEmit } from "../../src/cli/serve_emit.js";
import { KILN_BIN } from "../helpers/kiln_cli.js";
import { killGroups, start } from "../helpers/launch_procs.js";
import { sbatchProblems } from "../helpers/sbatch_directives.js";

type Obj = Record<string, unknown>;
const at = (o: unknown, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (v as Obj | undefined)?.[k], o);
const clone = <T>(x: T): T => structuredClone(x);

/** The YAML stream's documents as plain objects (a syntax error fails the test). */
function docsOf(yaml: string): Obj[] {
  const docs = parseAllDocuments(yaml) as Document[];
  expect(docs.flatMap((d) => d.errors.map(String))).toEqual([]);
  return docs.map((d) => d.toJS() as Obj);
}

const kiln = (args: string[], limitMs = 30_000) => start(process.execPath, [KILN_BIN, ...args], limitMs).ended;

const JOB: ClusterJob = { name: "llama-ft", nnodes: 2, nproc: 4, masterPort: 29500, command: ["kiln", "train", "--config", "c.yaml"], image: "ghcr.io/me/kiln:0.1" };
const SERVE: ServeDeployment = { name: "kiln-serve", image: "ghcr.io/me/kiln:0.1", replicas: 3, port: 8080, servicePort: 80, serviceType: "ClusterIP", serveArgs: ["--model", "stories260K"] };

afterEach(() => killGroups());

describe("the emitted manifests pass the Kubernetes schema checks", () => {
  it("kiln launch --emit k8s and kiln serve --emit k8s, as printed by the CLI", async () => {
    const [launch, serve] = await Promise.all([
      kiln(["launch", "--emit", "k8s", "--nproc", "8", "--nnodes", "2", "--gpus-per-node", "8", "--image", "ghcr.io/me/kiln:1", "--", "kiln", "train", "--config", "c.yaml"]),
      kiln(["serve", "--emit", "k8s", "--image", "ghcr.io/me/kiln:1", "--replicas", "4", "--gpus", "1", "--service-type", "LoadBalancer", "--", "--model", "stories260K", "--backend", "cpu"]),
    ]);
    for (const r of [launch, serve]) expect(r.code, r.stderr).toBe(0);
    const docs = [...docsOf(launch.stdout), ...docsOf(serve.stdout)];
    expect(docs.map((d) => `${String(d.apiVersion)}/${String(d.kind)}`)).toEqual(["v1/Service", "batch/v1/Job", "apps/v1/Deployment", "v1/Service"]);
    for (const d of docs) expect(k8sProblems(d), `${String(d.kind)}`).toEqual([]);
  });

  it("every variant of the emitters' options", () => {
    const jobs: ClusterJob[] = [JOB, { ...JOB, nnodes: 1, gpusPerNode: 8, masterPort: 1 }, { ...JOB, name: "a", command: ["sh", "-c", "echo $HOME"] }];
    const serves: ServeDeployment[] = [SERVE, { ...SERVE, replicas: 1, gpus: 2, port: 65535, servicePort: 8080, serviceType: "NodePort" }, { ...SERVE, name: "a", serveArgs: [] }];
    const docs = [...jobs.flatMap((j) => docsOf(emitK8s(j))), ...serves.flatMap((s) => docsOf(emitK8sServe(s)))];
    expect(docs).toHaveLength(12);
    for (const d of docs) expect(k8sProblems(d), JSON.stringify(d)).toEqual([]);
  });
});

describe("the schema checks fail on broken manifests", () => {
  const [svc, job] = k8sManifests(JOB);
  const [dep, lb] = serveManifests(SERVE);
  const broken = (base: Obj, edit: (o: Obj) => void): Obj => {
    const o = clone(base);
    edit(o);
    return o;
  };
  const container = (o: Obj) => (at(o, "spec.template.spec.containers") as Obj[])[0]!;
  const cases: [string, Obj, RegExp][] = [
    ["an unknown field (a typo)", broken(job, (o) => ((at(o, "spec.template.spec") as Obj).restartpolicy = "Never")), /spec\.template\.spec: unknown field "restartpolicy" in PodSpec/],
    ["a string where an integer goes", broken(dep, (o) => ((o.spec as Obj).replicas = "3")), /spec\.replicas: expected integer, got string "3"/],
    ["a missing required field", broken(dep, (o) => delete container(o).name), /containers\[0\]\.name: required in Container/],
    ["a missing required object", broken(dep, (o) => delete (o.spec as Obj).selector), /spec\.selector: required in DeploymentSpec/],
    ["an enum value it does not have", broken(job, (o) => ((o.spec as Obj).completionMode = "Indexd")), /spec\.completionMode: expected one of NonIndexed, Indexed/],
    ["an Indexed Job without completions", broken(job, (o) => delete (o.spec as Obj).completions), /an Indexed Job needs completions/],
    ["a Job whose pods restart Always", broken(job, (o) => ((at(o, "spec.template.spec") as Obj).restartPolicy = "Always")), /a Job's pods need Never or OnFailure/],
    ["a selector that misses the template's labels", broken(dep, (o) => ((at(o, "spec.selector.matchLabels") as Obj)["app.kubernetes.io/instance"] = "other")), /does not match spec\.template\.metadata\.labels \(app\.kubernetes\.io\/instance\)/],
    ["a probe on a port the container does not name", broken(dep, (o) => ((container(o).livenessProbe as Obj).httpGet = { path: "/health", port: "metrics" })), /livenessProbe: port "metrics" is no port name/],
    ["a probe without a handler", broken(dep, (o) => delete (container(o).readinessProbe as Obj).httpGet), /readinessProbe: needs exactly one handler/],
    ["a liveness success threshold other than 1", broken(dep, (o) => ((container(o).livenessProbe as Obj).successThreshold = 2)), /livenessProbe\.successThreshold: must be 1/],
    ["a mount of no volume", broken(job, (o) => ((at(o, "spec.template.spec") as Obj).volumes = [])), /volumeMounts: "dshm" names no volume/],
    ["GPU requests other than the limits", broken(dep, (o) => (container(o).resources = { limits: { "nvidia.com/gpu": 2 }, requests: { "nvidia.com/gpu": 1 } })), /must equal the limit for an extended resource/],
    ["a memory quantity that is none", broken(job, (o) => (container(o).resources = { limits: { memory: "2 GB" } })), /limits\.memory: expected a quantity/],
    ["a Service name starting with a digit", broken(svc, (o) => ((o.metadata as Obj).name = "1job")), /metadata\.name: not a valid Service name/],
    ["a Service port out of range", broken(lb, (o) => (((at(o, "spec.ports") as Obj[])[0]!).port = 70000)), /spec\.ports\[0\]\.port: not 1-65535/],
    ["a port name longer than 15", broken(dep, (o) => (((container(o).ports as Obj[])[0]!).name = "http-openai-api-port")), /not an IANA service name/],
    ["an env var with both value and valueFrom", broken(job, (o) => (((container(o).env as Obj[])[0]!).value = "0")), /env JOB_COMPLETION_INDEX: needs exactly one of value, valueFrom/],
    ["another kind", { apiVersion: "apps/v1", kind: "StatefulSet" }, /apps\/v1\/StatefulSet is not one of/],
  ];
  for (const [what, manifest, expected] of cases) {
    it(what, () => {
      const problems = k8sProblems(manifest);
      expect(problems.join("\n")).toMatch(expected);
    });
  }
  it("the unbroken bases pass (so each failure above is the edit's)", () => {
    for (const d of [svc, job, dep, lb]) expect(k8sProblems(d)).toEqual([]);
  });
});

describe("kiln serve --emit k8s", () => {
  it("its pod, run here, answers where its probes and the Prometheus annotations point", async () => {
    const port = await freePort("127.0.0.1");
    const r = await kiln(["serve", "--emit", "k8s", "--image", "i", "--port", String(port), "--", "--backend", "cpu", "--kv-blocks", "64", "--max-batch", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const [dep, svc] = docsOf(r.stdout);
    const c = (at(dep, "spec.template.spec.containers") as Obj[])[0]!;
    const command = c.command as string[];
    expect(command.slice(0, 6)).toEqual(["kiln", "serve", "--host", "0.0.0.0", "--port", String(port)]);
    // The Service sends its port to the pods' named port, and selects the Deployment's pods.
    expect(at(svc, "spec.ports")).toEqual([{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }]);
    const labels = at(dep, "spec.template.metadata.labels") as Obj;
    for (const [k, v] of Object.entries(at(svc, "spec.selector") as Obj)) expect(labels[k]).toBe(v);
    // NOTE: here on loopback rather than 0.0.0.0 (the kubelet reaches the pod's IP; this test only loopback).
    const args = command.slice(1).map((a) => (a === "0.0.0.0" ? "127.0.0.1" : a));
    const pod = start(process.execPath, [KILN_BIN, ...args], 60_000);
    const portOf = (name: unknown) => (c.ports as Obj[]).find((p) => p.name === name)!.containerPort as number;
    const get = (p: number, path: string) => fetch(`http://127.0.0.1:${p}${path}`).then(async (res) => ({ status: res.status, body: await res.text(), type: res.headers.get("content-type") }));
    // As the startup probe does: every 250 ms until /health answers (the server listens once the model is loaded).
    const probe = c.startupProbe as { httpGet: { path: string; port: string } };
    const deadline = Date.now() + 45_000;
    let health: { status: number; body: string } | undefined;
    while (Date.now() < deadline && pod.child.exitCode === null) {
      health = await get(portOf(probe.httpGet.port), probe.httpGet.path).catch(() => undefined);
      if (health) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(health, `${pod.out.stdout}\n${pod.out.stderr}`).toBeDefined();
    expect(health!.status).toBe(200);
    expect(JSON.parse(health!.body)).toEqual({ status: "ready" });
    for (const p of ["readinessProbe", "livenessProbe"]) {
      const h = (c[p] as { httpGet: { path: string; port: string } }).httpGet;
      expect((await get(portOf(h.port), h.path)).status).toBe(200);
    }
    const ann = at(dep, "spec.template.metadata.annotations") as Record<string, string>;
    expect(ann["prometheus.io/scrape"]).toBe("true");
    const scrape = await get(Number(ann["prometheus.io/port"]), ann["prometheus.io/path"]!);
    expect(scrape.status).toBe(200);
    expect(scrape.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(scrape.body).toMatch(/^# TYPE \S+ (counter|gauge|histogram)$/m);
    pod.child.kill("SIGTERM");
    const ended = await pod.ended;
    expect(ended.code, ended.stderr).toBe(0);
  }, 60_000);

  it("bad input: serve's own --port after --, no --image, an unknown service type, a name Services refuse, a serve option before --", async () => {
    // In-process (the flags' parsing and checks), then one through the real CLI for the exit code.
    const cmd = { name: "serve", summary: "", help: "", run: async () => 0 };
    const cases: [string[], RegExp][] = [
      [["--image", "i", "--", "--port", "9"], /--port after -- : the manifest sets where kiln serve listens/],
      [["--image", "i", "--", "--host=::"], /--host=:: after --/],
      [["--", "--model", "m"], /needs --image IMAGE/],
      [["--image", "i", "--service-type", "Ingress"], /--service-type "Ingress" is not one of ClusterIP, NodePort, LoadBalancer/],
      [["--image", "i", "--name", "9serve"], /--name "9serve" is not a DNS label of at most 46 characters/],
      [["--image", "i", "--replicas", "0"], /--replicas "0" is not an integer >= 1/],
      [["--image", "i", "--model", "m"], /--model is not an --emit k8s option; kiln serve's own options go after --/],
    ];
    for (const [args, expected] of cases) expect(() => runServeEmit(cmd, ["--emit", "k8s", ...args]), args.join(" ")).toThrow(expected);
    const r = await kiln(["serve", "--emit", "k8s", "--image", "i", "--", "--port", "9"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(cases[0]![1]);
  });
});

describe("kiln launch --emit slurm: the sbatch directives", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-sbatch-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("are sbatch options with valid values, before the first command, and bash reads the script", async () => {
    for (const job of [JOB, { ...JOB, gpusPerNode: 8, nnodes: 16 }]) {
      const script = emitSlurm(job);
      expect(sbatchProblems(script)).toEqual([]);
      const file = join(dir, "job.sbatch");
      writeFileSync(file, script);
      const check = await start("bash", ["-n", file], 10_000).ended;
      expect(check.code, check.stderr).toBe(0);
    }
  });

  it("a misspelled option, a bad value and a directive after a command are caught", () => {
    const script = emitSlurm({ ...JOB, gpusPerNode: 8 });
    const lines = script.split("\n");
    const bad = [...lines.slice(0, 3), "#SBATCH --ntask-per-node=1", "#SBATCH --nodes=0", "#SBATCH --gpus-per-node=a100:", ...lines.slice(3), "#SBATCH --time=1:00:00"].join("\n");
    const problems = sbatchProblems(bad);
    expect(problems).toEqual([
      "line 4: --ntask-per-node is not an sbatch option (of those checked here)",
      "line 5: --nodes=0 is not a valid value for --nodes",
      "line 6: --gpus-per-node=a100: is not a valid value for --gpus-per-node",
      `line ${lines.length + 4}: #SBATCH after the first command is ignored by sbatch: #SBATCH --time=1:00:00`,
    ]);
  });
});
