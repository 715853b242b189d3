// run.mjs: `npm run test:gpu`, the one script that checks and measures on a GPU what CI cannot: build the
// addon, the conformance suite on the cuda backend, compute-sanitizer memcheck and racecheck over part of
// it, then the benchmarks (bench/gpu/kernels.ts against PyTorch, bench/gpu/torch_peer.py; the webgpu
// kernel benchmark on the same GPU through Dawn's Vulkan), and the nccl communicator at world size 1
// (bench/gpu/nccl_check.ts: one GPU cannot host two NCCL ranks). Each step has its own time limit and its
// outcome is recorded; a failed step never stops the later ones, and the results (JSON and a markdown
// table in bench/results/gpu-<chip>.{json,md}) are written after every step, so a run cut short still
// leaves what it measured. Budget: under 8 minutes on one H100.
// Without a GPU it prints the plan, one "test:gpu: no GPU" line, and exits 0 (KILN_GPU_DRY_RUN=1 forces that).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const RESULTS = process.env.KILN_GPU_RESULTS ?? "bench/results";
const node = process.execPath;
const tsx = join("node_modules", ".bin", "tsx");
const vitest = join("node_modules", ".bin", "vitest");

/** The steps, in order: [name, seconds allowed, command, args, env]. */
const steps = (tag) => [
  ["build the addon and routines", 90, node, ["cuda/build.mjs"], {}],
  ["conformance on cuda", 120, vitest, ["run", "test/conformance", "--reporter=json", `--outputFile=${RESULTS}/${tag}-conformance.json`], { KILN_CONFORMANCE_CUDA: "1" }],
  ["memcheck (conformance ops)", 50, "compute-sanitizer", ["--tool", "memcheck", "--error-exitcode", "3", node, vitest, "run", "test/conformance/ops.test.ts"], { KILN_CONFORMANCE_CUDA: "1" }],
  ["racecheck (conformance routines)", 40, "compute-sanitizer", ["--tool", "racecheck", "--error-exitcode", "3", node, vitest, "run", "test/conformance/routines.test.ts"], { KILN_CONFORMANCE_CUDA: "1" }],
  ["kiln kernels (matmul, attention, bandwidth)", 80, tsx, ["bench/gpu/kernels.ts", `${RESULTS}/${tag}-kernels.json`], {}],
  ["PyTorch peer (matmul, SDPA)", 40, "python3", ["bench/gpu/torch_peer.py", `${RESULTS}/${tag}-torch.json`], {}],
  ["nccl communicator, world size 1", 20, tsx, ["bench/gpu/nccl_check.ts", `${RESULTS}/${tag}-nccl.json`], {}],
  ["kernel suite on cuda and webgpu (Dawn, Vulkan)", 40, tsx, ["bench/kernels.ts", "--backend", "all", "--quick", "--out", RESULTS, "--tag", tag], {}],
];

function gpuName() {
  if (process.env.KILN_GPU_DRY_RUN === "1") return { why: "KILN_GPU_DRY_RUN=1" };
  const smi = spawnSync("nvidia-smi", ["--query-gpu=name", "--format=csv,noheader"], { encoding: "utf8", timeout: 20_000 });
  if (smi.error || smi.status !== 0) return { why: smi.error ? `nvidia-smi: ${smi.error.code}` : `nvidia-smi exit ${smi.status}: ${(smi.stderr || smi.stdout).trim().split("\n")[0]}` };
  const name = smi.stdout.trim().split("\n")[0];
  return name ? { name } : { why: "nvidia-smi lists no GPU" };
}

const gpu = gpuName();
if (!gpu.name) {
  console.log("test:gpu would run, each step with its own limit (under 8 min in all), writing bench/results/gpu-<chip>.{json,md}:");
  for (const [name, secs, cmd, args, env] of steps("gpu-<chip>")) {
    console.log(`  ${name} (${secs} s): ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join("")}${cmd} ${args.join(" ")}`);
  }
  console.log(`test:gpu: no GPU (${gpu.why}); nothing run`);
  process.exit(0);
}

const tag = `gpu-${gpu.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}`;
mkdirSync(RESULTS, { recursive: true });
const record = { date: new Date().toISOString(), gpu: gpu.name, node: process.version, steps: [] };

function readJson(path) {
  try { return JSON.parse(readFileSync(path, "utf8")); } catch { return undefined; }
}

function save() {
  const kernels = readJson(`${RESULTS}/${tag}-kernels.json`)?.rows ?? [];
  const torch = readJson(`${RESULTS}/${tag}-torch.json`)?.rows ?? [];
  const nccl = readJson(`${RESULTS}/${tag}-nccl.json`)?.rows ?? [];
  record.kernels = kernels;
  record.torch = torch;
  record.nccl = nccl;
  writeFileSync(`${RESULTS}/${tag}.json`, JSON.stringify(record, null, 2));
  const fmt = (x, d = 1) => (x === undefined ? "-" : x.toFixed(d));
  const md = [
    `# test:gpu on ${gpu.name}, ${record.date}`, "",
    "| step | outcome | seconds |", "|---|---|---|",
    ...record.steps.map((s) => `| ${s.name} | ${s.outcome} | ${fmt(s.seconds)} |`), "",
    "| benchmark | ms | TFLOP/s | GB/s | error |", "|---|---|---|---|---|",
    ...[...kernels, ...torch, ...nccl].map((r) => `| ${r.name} | ${fmt(r.ms, 3)} | ${fmt(r.tflops)} | ${fmt(r.gbps, 0)} | ${r.error ?? ""} |`), "",
  ];
  writeFileSync(`${RESULTS}/${tag}.md`, md.join("\n"));
}

const started = Date.now();
for (const [name, secs, cmd, args, env] of steps(tag)) {
  const t0 = Date.now();
  console.log(`\n== test:gpu: ${name} (limit ${secs} s)`);
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], timeout: secs * 1000, killSignal: "SIGKILL", env: { ...process.env, ...env } });
  const outcome = r.error?.code === "ETIMEDOUT" ? `timed out after ${secs} s` : r.error ? `did not start: ${r.error.code}` : r.status === 0 ? "ok" : `failed (exit ${r.status ?? r.signal})`;
  record.steps.push({ name, outcome, seconds: (Date.now() - t0) / 1000 });
  console.log(`== test:gpu: ${name}: ${outcome}`);
  save();
}
console.log(`test:gpu: done in ${((Date.now() - started) / 1000).toFixed(0)} s on ${gpu.name}; ${RESULTS}/${tag}.md`);
process.exit(record.steps.every((s) => s.outcome === "ok") ? 0 : 1);
