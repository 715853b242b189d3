// examples.ts: the worked examples of docs/planning.md (7B, 70B, 405B, 1T MoE), each a training and a
// serving plan, rendered as markdown from the planners' output. The docs embed these blocks and
// test/unit/plan_docs.test.ts checks they match, so the page cannot drift from the code. The
// published-figures table is figures.ts's.

import { findGpu, listGpus } from "./gpus.js";
import { figuresMarkdown } from "./figures.js";
import { commSensitivity } from "./comm_model.js";
import { publishedRunsMarkdown } from "./published_runs.js";
import { findPreset } from "./presets.js";
import type { ServeRequest } from "./serve_plan.js";
import { planServe } from "./serve_plan.js";
import type { TrainRequest } from "./train_plan.js";
import { describeLayout, planTraining } from "./train_plan.js";
import { formatBytes, formatCount, formatDollars, formatFlops, formatInt, formatPercent, formatSeconds } from "./units.js";

interface Example {
  readonly name: string;
  readonly train: TrainRequest;
  /** The `kiln plan train` flags that ask the same. */
  readonly trainFlags: string;
  readonly serve: ServeRequest;
  readonly serveFlags: string;
}

const model = (n: string) => findPreset(n)!;
const h100 = findGpu("h100");

export const EXAMPLES: readonly Example[] = [
  {
    name: "7b",
    train: { model: model("llama2-7b"), gpu: h100, gpus: 64, tokens: 2e12, targetDays: 30 },
    trainFlags: "--model llama2-7b --gpu h100 --gpus 64 --tokens 2T --target-days 30",
    serve: { model: model("llama2-7b"), gpu: h100, precision: "bf16", contextLength: 4096, requestsPerSecond: 20, promptTokens: 1024, outputTokens: 256, ttftTargetS: 0.5, tpotTargetS: 0.05 },
    serveFlags: "--model llama2-7b --gpu h100 --precision bf16 --context 4096 --rps 20 --prompt 1024 --output 256 --ttft 500 --tpot 50",
  },
  {
    name: "70b",
    train: { model: model("llama3-70b"), gpu: h100, gpus: 1024, tokens: 2e12, targetDays: 30 },
    trainFlags: "--model llama3-70b --gpu h100 --gpus 1024 --tokens 2T --target-days 30",
    serve: { model: model("llama3-70b"), gpu: h100, precision: "fp8", contextLength: 8192, requestsPerSecond: 10, promptTokens: 2048, outputTokens: 512, ttftTargetS: 1, tpotTargetS: 0.05 },
    serveFlags: "--model llama3-70b --gpu h100 --precision fp8 --context 8192 --rps 10 --prompt 2048 --output 512 --ttft 1000 --tpot 50",
  },
  {
    name: "405b",
    train: { model: model("llama3-405b"), gpu: h100, gpus: 16384, tokens: 15e12, batchTokens: 16 * 2 ** 20, targetDays: 90 },
    trainFlags: "--model llama3-405b --gpu h100 --gpus 16384 --tokens 15T --batch-tokens 16777216 --target-days 90",
    serve: { model: model("llama3-405b"), gpu: h100, precision: "fp8", contextLength: 8192, requestsPerSecond: 5, promptTokens: 2048, outputTokens: 512, ttftTargetS: 2, tpotTargetS: 0.1 },
    serveFlags: "--model llama3-405b --gpu h100 --precision fp8 --context 8192 --rps 5 --prompt 2048 --output 512 --ttft 2000 --tpot 100",
  },
  {
    name: "1t-moe",
    train: { model: model("moe-1t"), gpu: h100, gpus: 8192, tokens: 15e12, batchTokens: 16 * 2 ** 20, targetDays: 90 },
    trainFlags: "--model moe-1t --gpu h100 --gpus 8192 --tokens 15T --batch-tokens 16777216 --target-days 90",
    serve: { model: model("moe-1t"), gpu: findGpu("gb200"), precision: "fp8", contextLength: 8192, requestsPerSecond: 10, promptTokens: 2048, outputTokens: 512, ttftTargetS: 1, tpotTargetS: 0.05 },
    serveFlags: "--model moe-1t --gpu gb200 --precision fp8 --context 8192 --rps 10 --prompt 2048 --output 512 --ttft 1000 --tpot 50",
  },
];

function trainMarkdown(e: Example): string {
  const p = planTraining(e.train);
  const c = p.params;
  const head = [
    `\`kiln plan train ${e.trainFlags}\``,
    "",
    "| | |",
    "|---|---|",
    `| parameters | ${formatCount(c.total)}${c.experts > 0 ? ` (${formatCount(c.active)} active per token)` : ""} |`,
    `| training compute | ${formatFlops(p.trainingFlops)} FLOPs (6N + attention at ${p.seqLen}-token sequences) |`,
  ];
  const b = p.best;
  if (!b) return [...head, `| result | no plan: ${p.failure} |`].join("\n");
  const comm = b.step.comm.map((x) => `${x.kind} over ${x.link} ${formatPercent(x.exposedSeconds / b.step.stepSeconds)}`).join(", ");
  return [
    ...head,
    `| layout | ${describeLayout(b.layout)} (${p.feasible} of ${p.considered} layouts fit) |`,
    `| memory per GPU | ${formatBytes(b.memory.total)} of ${formatBytes(p.usableMemoryBytes)}: weights ${formatBytes(b.memory.weights)}, gradients ${formatBytes(b.memory.grads)}, optimizer ${formatBytes(b.memory.optimizer)}, activations ${formatBytes(b.memory.activations)} |`,
    `| step | ${formatSeconds(b.step.stepSeconds)} for ${formatCount(b.step.tokensPerStep)} tokens; pipeline bubble ${formatPercent(b.step.bubbleFraction)} |`,
    `| exposed communication | ${comm || "none"} |`,
    `| MFU | ${formatPercent(b.step.mfu)} |`,
    `| time | ${b.days.toFixed(1)} days (target ${p.targetDays} days: ${p.meetsTarget ? "met" : "missed"}) |`,
    `| GPU-hours, cost | ${formatInt(b.gpuHours)} h, ${formatDollars(b.cost)} (${formatDollars(b.costPerMillionTokens)} per million tokens) |`,
    "",
    ...p.reasons.slice(2).map((r) => `- ${r}`),
    ...(p.failure ? [`- ${p.failure}`] : []),
  ].join("\n");
}

function serveMarkdown(e: Example): string {
  const p = planServe(e.serve);
  const head = [`\`kiln plan serve ${e.serveFlags}\``, "", "| TP | weights/GPU | KV tokens | max batch | decode bound, batch 1 | step at max batch | prefill | instances | $/M tokens |", "|---|---|---|---|---|---|---|---|---|"];
  const rows = p.candidates.filter((c) => c.fits).map((c) =>
    `| ${c.tp}${c === p.best ? " (chosen)" : ""} | ${formatBytes(c.weightsBytesPerGpu)} | ${formatInt(c.kvTokens)} | ${c.maxBatch} | ${c.decodeBoundTokensPerS.toFixed(0)} tokens/s | ${formatSeconds(c.stepMaxBatchS)} | ${formatSeconds(c.prefillS)} | ${c.instances.total} (${c.gpus} GPUs) | ${formatDollars(c.costPerMillionTokens)} |`);
  const failed = p.candidates.filter((c) => !c.fits).map((c) => `- tp=${c.tp} fails: ${c.failure}`);
  const tail = p.best ? ["", `kiln serve auto settings per instance: ${p.best.auto!.summary}.`] : ["", `No plan: ${p.failure}`];
  return [...head, ...rows, ...(failed.length ? ["", ...failed] : []), ...tail].join("\n");
}

function gpuMarkdown(): string {
  const tf = (x: number | null): string => (x === null ? "-" : (x / 1e12).toFixed(0));
  return [
    "| Name | GPU | Memory | Bandwidth | bf16 TFLOP/s | fp8 TFLOP/s | Node link (per direction) | Network per GPU | Host link | GPUs per node | $/hour |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...listGpus().map((g) =>
      `| ${g.name} | ${g.description} | ${formatBytes(g.memoryBytes)} | ${formatBytes(g.memoryBytesPerS)}/s | ${tf(g.bf16Flops)} | ${tf(g.fp8Flops)} | ${g.nodeLinkName} ${formatBytes(g.nodeLinkBytesPerS)}/s | ${formatBytes(g.networkBytesPerS)}/s | ${formatBytes(g.hostBytesPerS)}/s | ${g.gpusPerNode} | ${g.pricePerHour.toFixed(2)} |`),
  ].join("\n");
}

/** The training examples (and 405B on 1024 GPUs) under nominal links, the NCCL defaults and worse links. */
function sensitivityMarkdown(): string {
  const cases: [string, TrainRequest][] = [
    ...EXAMPLES.map((e): [string, TrainRequest] => [e.trainFlags.replace(/ --target-days \d+/, ""), e.train]),
    ["--model llama3-405b --gpu h100 --gpus 1024 --tokens 15T", { model: model("llama3-405b"), gpu: h100, gpus: 1024, tokens: 15e12 }],
  ];
  const rows = cases.flatMap(([flags, req]) => commSensitivity(req).map((r, i) =>
    `| ${i === 0 ? `\`${flags}\`` : ""} | ${r.scenario} | ${r.best ? `${describeLayout(r.best.layout)} | ${formatPercent(r.best.step.mfu)} | ${r.best.days.toFixed(1)}` : "nothing fits | - | -"} |`));
  return ["| Request | Link model | Layout | MFU | Days |", "|---|---|---|---|---|", ...rows].join("\n");
}

/** The generated blocks of docs/planning.md, by name (`<!-- generated:NAME -->`). */
export function docBlocks(): Record<string, string> {
  const blocks: Record<string, string> = { gpus: gpuMarkdown(), figures: figuresMarkdown(), "comm-sensitivity": sensitivityMarkdown(), "published-runs": publishedRunsMarkdown() };
  for (const e of EXAMPLES) {
    blocks[`train-${e.name}`] = trainMarkdown(e);
    blocks[`serve-${e.name}`] = serveMarkdown(e);
  }
  return blocks;
}
