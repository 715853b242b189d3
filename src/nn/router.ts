// router.ts: the token router of a mixture-of-experts layer: which k experts each token goes to, with
// what weight, into which slot of each expert's capacity, and the load-balancing auxiliary loss. It owns
// the routing decision only; the experts and the dispatch/combine of token rows are moe.ts's.
//   - top-k of softmax(router logits), the k chosen probabilities renormalised to sum to 1 (Mixtral's:
//     the same as a softmax over the k chosen logits);
//   - capacity (GShard / Switch): each expert takes at most C = ceil(capacityFactor * N * k / E) of the
//     N * k (token, choice) assignments, first choices before second ones, earlier tokens first; an
//     assignment past C is dropped (its slot is -1: it adds nothing, so a token dropped by all its choices
//     passes through the block's residual alone). No capacityFactor: C = N, nothing is ever dropped;
//   - Switch Transformer's auxiliary loss E * sum_e f_e * P_e, f_e the share of the N * k assignments that
//     chose expert e (before dropping; no gradient), P_e the mean router probability of e (1 when balanced;
//     HF's Mixtral loss is k times this). Under expert parallel f and P are means over the ranks' tokens
//     (RouterOptions.groupMean), so the loss is the one of all tokens together.
// Everything here is kiln tensor ops (argmax, one-hot, a matmul for the running count), so autograd, jit
// capture and every backend get it. NOTE: the running count is a lower-triangular (N, N) matmul: O(N^2 E),
// cheap at the token counts trained here; a cumsum routine would make it O(N E).

import type { Tensor } from "../index.js";
import { arange, argmax, matmul, noGrad, oneHot, softmax } from "../index.js";

export interface RouterOptions {
  /** Experts each token is sent to (1 <= topK <= numExperts). */
  readonly topK: number;
  /** Slots per expert as a multiple of an even share, N * k / E; undefined: unlimited (C = N). */
  readonly capacityFactor?: number;
  /**
   * The mean over the processes that route tokens (expert parallel: every rank's own tokens, as many on
   * each) of a statistic (E,): the aux loss's f and P then describe all the tokens, as one process would.
   * Differentiable. Default: the identity (one process).
   */
  readonly groupMean?: (x: Tensor) => Tensor;
}

export interface Routing {
  /** Router probabilities (N, E), softmax over experts: the aux loss's P reads them. */
  readonly probs: Tensor;
  /** Per choice j < k: the chosen expert (N,) i32. */
  readonly experts: readonly Tensor[];
  /** Per choice: its weight (N,), renormalised over the k choices; differentiable through probs. */
  readonly gates: readonly Tensor[];
  /** Per choice: the slot e * C + position in expert e's buffer (N,) i32, or -1 when dropped. */
  readonly slots: readonly Tensor[];
  /** Slots per expert. */
  readonly capacity: number;
  /** Switch's load-balancing loss, a scalar (1 when perfectly balanced). */
  readonly auxLoss: Tensor;
  /** How many (token, choice) assignments were dropped for capacity, a scalar (float). */
  readonly dropped: Tensor;
}

/** C for N tokens, E experts, k choices: ceil(factor * N * k / E), at least 1 and at most N. */
export function expertCapacity(tokens: number, numExperts: number, topK: number, capacityFactor?: number): number {
  if (capacityFactor === undefined) return tokens;
  if (!(capacityFactor > 0)) throw new Error(`moe router: capacityFactor must be > 0, got ${capacityFactor}`);
  return Math.min(tokens, Math.max(1, Math.ceil((capacityFactor * tokens * topK) / numExperts)));
}

/** Route tokens given the router's logits (N, E). */
export function routeTokens(logits: Tensor, opts: RouterOptions): Routing {
  if (logits.ndim !== 2) throw new Error(`moe router: logits must be (tokens, experts), got ${logits}`);
  const [n, e] = logits.shape as [number, number];
  const k = opts.topK;
  if (!(Number.isInteger(k) && k >= 1 && k <= e)) throw new Error(`moe router: topK must be an integer from 1 to the ${e} experts, got ${k}`);
  const capacity = expertCapacity(n, e, k, opts.capacityFactor);
  const probs = softmax(logits, -1); // (N, E)
  const dtype = probs.dtype;

  // The choices: argmax, masked out, k times. NOTE: probabilities are >= 0, so -1 masks a taken expert.
  const { experts, hots } = noGrad(() => {
    let remaining = probs.detach();
    const ex: Tensor[] = [];
    const hs: Tensor[] = [];
    for (let j = 0; j < k; j++) {
      const idx = argmax(remaining, -1); // (N,)
      const hot = oneHot(idx, e); // (N, E) bool
      remaining = hot.where(-1, remaining);
      ex.push(idx.cast("i32"));
      hs.push(hot.cast(dtype));
    }
    return { experts: ex, hots: hs };
  });

  const picked = hots.map((h) => probs.mul(h).sum(-1)); // (N,) each
  const total = picked.reduce((a, b) => a.add(b));
  const gates = picked.map((p) => p.div(total));

  // Each assignment's position in its expert's buffer: earlier choices first, then earlier tokens.
  const { slots, dropped, fraction } = noGrad(() => {
    const at = arange(n, undefined, 1, { backend: probs.backend });
    const [rows, cols] = [at.reshape([n, 1]), at.reshape([1, n])];
    const lower = cols.le(rows).cast(dtype); // (N, N): token i counts tokens t <= i
    let before = probs.full([e], 0, dtype); // (E,) assignments of earlier choices per expert
    const sl: Tensor[] = [];
    let drop: Tensor | undefined;
    hots.forEach((hot, j) => {
      const count = matmul(lower, hot); // (N, E) inclusive running count per expert
      const pos = count.sub(1).add(before).mul(hot).sum(-1); // (N,) position within the chosen expert
      const kept = pos.lt(capacity);
      sl.push(kept.where(experts[j]!.mul(capacity).add(pos.cast("i32")), -1).cast("i32"));
      const d = kept.not().cast(dtype).sum();
      drop = drop ? drop.add(d) : d;
      before = before.add(hot.sum(0));
    });
    return { slots: sl, dropped: drop!, fraction: before.div(n * k) };
  });

  const mean = opts.groupMean ?? ((x: Tensor) => x);
  const auxLoss = noGrad(() => mean(fraction)).mul(mean(probs.mean(0))).sum().mul(e);
  return { probs, experts, gates, slots, capacity, auxLoss, dropped };
}
