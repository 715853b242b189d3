// errors.ts: the launcher's two kinds of bad input, as classes a caller can tell apart: a variable a
// launcher left in the environment (LaunchEnvError) and a launch asked for (LaunchSpecError: flags
// such as --nproc or --master). Each message names what was wrong, its value and what was expected.

/** A launcher variable missing or malformed, or a set of them that contradicts itself. */
export class LaunchEnvError extends Error {}

/** A launch request that cannot be run or emitted: a count, a rank, an address, a name. */
export class LaunchSpecError extends Error {}
