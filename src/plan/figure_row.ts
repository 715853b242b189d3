// figure_row.ts: one row of the seed-figures check (figures.ts, seed_figures.ts): the seed's number,
// kiln's, the verdict and why they differ. Shared by both so that every row is judged the same way.

export interface FigureRow {
  readonly group: string;
  readonly figure: string;
  /** The seed's figure as it prints it; "not quoted" where neither issue 6 nor 15 gives its number. */
  readonly published: string;
  /** null where the seed's number is not at hand (the row then gives kiln's figure only). */
  readonly publishedValue: number | null;
  readonly kiln: string;
  readonly kilnValue: number;
  /** "reproduced" within 10%, "differs" beyond, "kiln only" without a seed number to compare. */
  readonly verdict: "reproduced" | "differs" | "kiln only";
  readonly why: string;
}

export function figureRow(group: string, figure: string, published: string, publishedValue: number | null, kiln: string, kilnValue: number, why: string): FigureRow {
  const verdict = publishedValue === null ? "kiln only" : Math.abs(publishedValue / kilnValue - 1) <= 0.1 ? "reproduced" : "differs";
  return { group, figure, published, publishedValue, kiln, kilnValue, verdict, why };
}

/** "not quoted": the seed's number is not in the issues that quote it, so only kiln's is given. */
export const NOT_QUOTED = "not quoted";
