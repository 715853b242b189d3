// pipeline_partition.ts: which pieces of the model (embedding, blocks, head: models/training_pieces.ts)
// each pipeline stage runs. Stages take contiguous runs of pieces, chosen to make the slowest stage as
// fast as possible given each piece's measured cost (forward + backward), since a 1F1B step's length is
// set by its slowest stage. Equal block counts are wrong when the embedding or the head (a vocab-wide
// matmul and the loss) cost as much as several blocks. Measuring is timeCosts(); choosing is partition().

/** A stage's pieces: [start, end) in piece order (0 = embedding, 1..L = blocks, L + 1 = head). */
export type StageRange = readonly [number, number];

/**
 * Splits pieces of these costs into `stages` contiguous non-empty runs minimizing the largest run's sum
 * (exact: dynamic programming over split points, ties going to the earliest split). Returns each stage's range.
 */
export function partition(costs: readonly number[], stages: number): StageRange[] {
  const n = costs.length;
  if (!(Number.isInteger(stages) && stages >= 1)) throw new Error(`pipeline partition: stages must be an integer >= 1, got ${stages}`);
  if (stages > n) throw new Error(`pipeline partition: ${stages} stages for ${n} pieces (embedding, ${n - 2} blocks, head): every stage needs at least one`);
  costs.forEach((c, i) => {
    if (!(Number.isFinite(c) && c >= 0)) throw new Error(`pipeline partition: piece ${i}'s cost is ${c}, expected a finite number >= 0`);
  });
  const prefix = [0];
  for (const c of costs) prefix.push(prefix.at(-1)! + c);
  const sum = (a: number, b: number) => prefix[b]! - prefix[a]!;
  // best[k][j]: the smallest max-run over the first j pieces cut into k runs; cut[k][j]: where the last run starts.
  const best = [...Array(stages + 1)].map(() => new Array<number>(n + 1).fill(Infinity));
  const cut = [...Array(stages + 1)].map(() => new Array<number>(n + 1).fill(0));
  best[0]![0] = 0;
  for (let k = 1; k <= stages; k++) {
    for (let j = k; j <= n; j++) {
      for (let i = k - 1; i < j; i++) {
        const v = Math.max(best[k - 1]![i]!, sum(i, j));
        if (v < best[k]![j]!) [best[k]![j], cut[k]![j]] = [v, i];
      }
    }
  }
  const ranges: StageRange[] = [];
  let end = n;
  for (let k = stages; k >= 1; k--) {
    const start = cut[k]![end]!;
    ranges.unshift([start, end]);
    end = start;
  }
  return ranges;
}

/** Equal piece counts (the first stages one more when they do not divide): for tests and as a fixed choice. */
export function equalPartition(pieces: number, stages: number): StageRange[] {
  return partition(new Array<number>(pieces).fill(1), stages);
}

/** Each stage's summed cost under `ranges`. */
export function stageCosts(costs: readonly number[], ranges: readonly StageRange[]): number[] {
  return ranges.map(([a, b]) => costs.slice(a, b).reduce((s, c) => s + c, 0));
}
