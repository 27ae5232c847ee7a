/** One thing wrong with the environment. */
export interface ConfigProblem {
  /** The variable (or nested path) at fault, e.g. `PORT`. */
  readonly path: string;
  /** What is wrong with it, e.g. `required` or `expected a number, got "abc"`. */
  readonly message: string;
}

/**
 * Thrown by `loadConfig` when the environment does not satisfy the schema. Its message lists every
 * problem, one per line, so a failed start is fixed in one go:
 *
 * ```text
 * Invalid configuration (2 problems):
 *   - PORT: expected a number (a port from 0 to 65535), got "abc"
 *   - DATABASE_URL: required
 * ```
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = `${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}`;
    const lines = problems.map((problem) => `  - ${problem.path}: ${problem.message}`);
    super([`Invalid configuration (${count}):`, ...lines].join('\n'));
    this.problems = Object.freeze([...problems]);
  }
}
