// comm_model.ts: the link model a plan runs under, from the user's overrides (--node-link-efficiency,
// --network-efficiency, --latency-scale) checked and named when wrong, and the sensitivity of a
// training plan to it: the same request planned with nominal links (IDEAL_COMM, the planner before
// issue 15's bug 10), with the NCCL defaults, and with links 20% slower and latencies doubled.

import type { CommModel } from "./collectives.js";
import { COMM_DEFAULTS, IDEAL_COMM } from "./collectives.js";
import type { TrainCandidate, TrainRequest } from "./train_plan.js";
import { planTraining } from "./train_plan.js";
import { PlanInputError } from "./units.js";

export interface CommOverrides {
  readonly nodeLinkEfficiency?: number;
  readonly networkEfficiency?: number;
  /** Multiplies every latency of the defaults (0: none). */
  readonly latencyScale?: number;
}

/** COMM_DEFAULTS with the overrides applied; an efficiency outside (0, 1] or a negative scale is an error naming the flag. */
export function commModel(o: CommOverrides, base: CommModel = COMM_DEFAULTS): CommModel {
  const eff = (flag: string, v: number | undefined, d: number): number => {
    if (v === undefined) return d;
    if (!(v > 0 && v <= 1)) throw new PlanInputError(`${flag}: ${v} is not a share of the link's bandwidth in (0, 1]`);
    return v;
  };
  const scale = o.latencyScale ?? 1;
  if (!(scale >= 0 && Number.isFinite(scale))) throw new PlanInputError(`--latency-scale: ${o.latencyScale} is not a number >= 0`);
  return {
    nodeLinkEfficiency: eff("--node-link-efficiency", o.nodeLinkEfficiency, base.nodeLinkEfficiency),
    networkEfficiency: eff("--network-efficiency", o.networkEfficiency, base.networkEfficiency),
    baseLatencyS: base.baseLatencyS * scale,
    nvlinkStepLatencyS: base.nvlinkStepLatencyS * scale,
    pcieStepLatencyS: base.pcieStepLatencyS * scale,
    networkStepLatencyS: base.networkStepLatencyS * scale,
  };
}

/** The link models a sensitivity table compares. */
export const COMM_SCENARIOS: readonly { readonly name: string; readonly comm: CommModel }[] = [
  { name: "nominal links, no latency", comm: IDEAL_COMM },
  { name: "NCCL defaults", comm: COMM_DEFAULTS },
  {
    name: "20% slower links, 2x latency",
    comm: commModel({ nodeLinkEfficiency: COMM_DEFAULTS.nodeLinkEfficiency * 0.8, networkEfficiency: COMM_DEFAULTS.networkEfficiency * 0.8, latencyScale: 2 }),
  },
];

export interface CommSensitivityRow {
  readonly scenario: string;
  /** The best layout under that link model, or undefined when none fits. */
  readonly best?: TrainCandidate;
}

/** The request planned under each scenario (its own `comm` and target time are left out). */
export function commSensitivity(req: TrainRequest): CommSensitivityRow[] {
  const { targetDays: _t, comm: _c, ...rest } = req;
  return COMM_SCENARIOS.map((s) => {
    const best = planTraining({ ...rest, comm: s.comm }).best;
    return { scenario: s.name, ...(best ? { best } : {}) };
  });
}
