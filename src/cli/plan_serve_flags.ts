// plan_serve_flags.ts: the `kiln plan serve` flags of issue 15's serving additions: the prefix-cache
// hit rate, speculative decoding (k, acceptance, the draft's cost) and the service-time variability
// of the M/G/c queue. Parsing only; every number comes from src/plan.

import type { ServeRequest } from "../plan/index.js";
import { PlanInputError } from "../plan/index.js";

type Values = Record<string, string | boolean | undefined>;

export const SERVE_OPTIONS = {
  "prefix-hit": { type: "string" }, "spec-k": { type: "string" }, "spec-accept": { type: "string" }, "spec-draft-cost": { type: "string" }, "service-scv": { type: "string" },
} as const;

export const SERVE_FLAGS_HELP = `  --prefix-hit R    (serve) share of each prompt served from the prefix cache, 0 to <1 (0.5 or 50%)
  --spec-k K --spec-accept A --spec-draft-cost C
                    (serve) speculative decoding: K draft tokens per target step, per-token
                    acceptance A in [0, 1), the draft's step time as a share C of the target's
  --service-scv S   (serve) squared coefficient of variation of a request's service time in the
                    M/G/c queue (default 1: exponential, M/M/c; 0: identical requests)`;

const str = (v: Values, k: string): string | undefined => (typeof v[k] === "string" ? (v[k] as string) : undefined);

/** A number >= 0 (a trailing % divides by 100), or an error naming the flag. */
function share(text: string, flag: string): number {
  const t = text.trim();
  const pct = t.endsWith("%");
  const x = Number(pct ? t.slice(0, -1) : t) / (pct ? 100 : 1);
  if (t === "" || !Number.isFinite(x) || x < 0) throw new PlanInputError(`${flag}: '${text}' is not a number >= 0`);
  return x;
}

export function serveExtrasFromFlags(v: Values): Pick<ServeRequest, "prefixHitRate" | "spec" | "serviceScv"> {
  const out: { prefixHitRate?: number; spec?: ServeRequest["spec"]; serviceScv?: number } = {};
  const p = str(v, "prefix-hit");
  if (p !== undefined) out.prefixHitRate = share(p, "--prefix-hit");
  const k = str(v, "spec-k");
  const a = str(v, "spec-accept");
  const c = str(v, "spec-draft-cost");
  if (k !== undefined || a !== undefined || c !== undefined) {
    if (k === undefined || a === undefined || c === undefined) {
      throw new PlanInputError(`speculative decoding needs all of --spec-k, --spec-accept and --spec-draft-cost (missing ${[["--spec-k", k], ["--spec-accept", a], ["--spec-draft-cost", c]].filter(([, x]) => x === undefined).map(([f]) => f).join(", ")})`);
    }
    const kk = Number(k);
    if (!Number.isInteger(kk)) throw new PlanInputError(`--spec-k: '${k}' is not a whole number`);
    out.spec = { k: kk, accept: share(a, "--spec-accept"), draftCost: share(c, "--spec-draft-cost") };
  }
  const s = str(v, "service-scv");
  if (s !== undefined) out.serviceScv = share(s, "--service-scv");
  return out;
}
