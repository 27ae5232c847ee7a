// Generates packages/contracts/src/generated/ from contracts/events/*.schema.json.
//   tsx packages/contracts/scripts/generate.ts          write the files (npm run contracts:generate)
//   tsx packages/contracts/scripts/generate.ts --check  exit 1 if the committed files are stale
//                                                      (npm run contracts:check)
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeDrift, findDrift } from './drift';
import { renderContracts } from './render-contracts';

const packageDir = path.resolve(import.meta.dirname, '..');
const eventsDir = path.resolve(packageDir, '../../contracts/events');
const generatedDir = path.join(packageDir, 'src/generated');
const shownDir = path.relative(process.cwd(), generatedDir) || '.';

async function readGenerated(): Promise<Map<string, string>> {
  const names = await readdir(generatedDir).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  });
  const entries = await Promise.all(
    names.sort().map(async (name) => [name, await readFile(path.join(generatedDir, name), 'utf8')]),
  );
  return new Map(entries as [string, string][]);
}

const isCheck = process.argv.includes('--check');
const expected = await renderContracts(eventsDir);
const drifts = findDrift(expected, await readGenerated());

if (isCheck) {
  if (drifts.length > 0) {
    process.stderr.write(`${describeDrift(drifts, shownDir)}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`contracts: ${expected.size} generated files are up to date\n`);
  }
} else {
  await mkdir(generatedDir, { recursive: true });
  for (const drift of drifts) {
    const target = path.join(generatedDir, drift.file);
    if (drift.kind === 'unexpected') await rm(target);
    else await writeFile(target, expected.get(drift.file) ?? '');
    process.stdout.write(
      `contracts: ${drift.kind === 'unexpected' ? 'removed' : 'wrote'} ${path.join(shownDir, drift.file)}\n`,
    );
  }
  if (drifts.length === 0) process.stdout.write(`contracts: ${shownDir} is up to date\n`);
}
