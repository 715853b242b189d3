// prefill_first.ts: the scheduler's "prefill first" policy (SchedulerConfig.prefillFirst), for time to
// first token under load. Without it a request that arrives while N requests decode is prefilled in the
// next step together with all N decodes, so its first token waits for a full step of N + its prompt
// rows. With it, that step runs only the waiting prompts: a few rows, on the cpu backend about one pass
// over the weights (a 32-row decode step of the 85.7M Llama is several of those), so the first token
// comes one short step after the step in flight, and the decodes run in the step after. Never two such
// steps in a row, so a stream of arrivals cannot starve the running requests; never while a running
// request is still in its prompt (chunked prefill keeps its order).

/** What the policy looks at: plain counts of the scheduler's state before a step. */
export interface PrefillFirstState {
  readonly enabled: boolean;
  /** The step before this one ran prompts only. */
  readonly lastWasPrefillOnly: boolean;
  readonly running: number;
  readonly waiting: number;
  readonly maxNumSeqs: number;
  /** Some running request still has prompt tokens to compute (a chunked prefill in progress). */
  readonly runningInPrompt: boolean;
}

/** True when this step should run the waiting requests' prompts only (see the file comment). */
export function prefillOnlyStep(s: PrefillFirstState): boolean {
  return s.enabled && !s.lastWasPrefillOnly && s.running > 0 && s.waiting > 0 && s.running < s.maxNumSeqs && !s.runningInPrompt;
}
