// serve_queueing.ts: how long a request waits for a batch slot, from an M/G/c queue: Poisson
// arrivals at λ requests/s, c servers (the batch slots of all instances), each request holding one
// for a service time of mean E[S]. The probability of waiting is Erlang C; the mean wait is M/M/c's
// scaled by the Allen-Cunneen approximation for general service times, (C_a² + C_s²) / 2 with C_a² = 1
// (Poisson arrivals); the p99 of the wait takes M/M/c's exponential tail, P(W > t) = C e^{-(cμ - λ)t},
// with its rate divided by the same factor. serve_plan.ts adds the wait to the prefill for TTFT.
//
// Sources: Erlang C and the M/M/c wait distribution (e.g. Kleinrock, Queueing Systems vol. 1, §3.5);
// Allen-Cunneen (Allen 1990, Probability, Statistics and Queueing Theory, §6.5).

import { PlanInputError } from "./units.js";

export interface QueueInput {
  /** Arrival rate λ, requests/s. */
  readonly arrivalsPerS: number;
  /** Servers c (whole). */
  readonly servers: number;
  /** Mean service time E[S], seconds (μ = 1 / E[S]). */
  readonly serviceS: number;
  /** Squared coefficient of variation of the service time: 1 exponential (M/M/c), 0 fixed lengths. */
  readonly serviceScv: number;
}

export interface QueueEstimate {
  /** Utilization ρ = λ E[S] / c. */
  readonly utilization: number;
  /** Erlang C: the probability that an arrival waits. */
  readonly waitProbability: number;
  readonly meanWaitS: number;
  readonly p99WaitS: number;
}

/**
 * Erlang C for c servers and offered load a = λ E[S] (< c), through Erlang B's stable recursion
 * B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)), then C = c B / (c - a (1 - B)).
 */
export function erlangC(servers: number, load: number): number {
  let b = 1;
  for (let k = 1; k <= servers; k++) b = (load * b) / (k + load * b);
  return (servers * b) / (servers - load * (1 - b));
}

/** The queue's wait; an unstable queue (ρ >= 1) is an error saying by how much. */
export function queueWait(q: QueueInput): QueueEstimate {
  const { arrivalsPerS: lambda, servers: c, serviceS, serviceScv } = q;
  if (!(Number.isInteger(c) && c >= 1)) throw new PlanInputError(`queue: ${c} servers is not a positive whole number`);
  if (!(serviceScv >= 0)) throw new PlanInputError(`--service-scv: ${serviceScv} is not a number >= 0`);
  const load = lambda * serviceS;
  const utilization = load / c;
  if (!(utilization < 1)) throw new PlanInputError(`queue: ${lambda} requests/s on ${c} slots of ${serviceS.toFixed(3)} s each is ${(utilization * 100).toFixed(0)}% utilization: the queue grows without bound`);
  const waitProbability = erlangC(c, load);
  const factor = (1 + serviceScv) / 2;
  const drain = c / serviceS - lambda; // cμ - λ
  const meanWaitS = (factor * waitProbability) / drain;
  // P(W > t) = C e^{-drain t / factor} = 0.01  =>  t = factor ln(100 C) / drain (0 when C <= 1%)
  const p99WaitS = waitProbability <= 0.01 ? 0 : (factor * Math.log(100 * waitProbability)) / drain;
  return { utilization, waitProbability, meanWaitS, p99WaitS };
}
