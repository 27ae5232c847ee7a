/**
 * The projects `npm test` runs when the caller names none. The `bigquery` project is opt-in
 * (`npm run test:bigquery`): it needs the BigQuery emulator, which `npm test` does not install.
 */
export const defaultTestProjects = ['unit', 'integration'] as const;

/** Arguments for `vitest run` from the arguments given to `bazaar test`. */
export function vitestArgsFor(argv: readonly string[]): string[] {
  const args = argv.filter((arg) => arg !== '--keep' && arg !== 'test');
  const namesProject = args.some((arg) => arg === '--project' || arg.startsWith('--project='));
  if (namesProject) return args;
  return [...defaultTestProjects.flatMap((name) => ['--project', name]), ...args];
}
