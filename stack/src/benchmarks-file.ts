import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './config';

export const BENCHMARKS_FILE = path.join(repoRoot, 'docs', 'benchmarks.md');

/** One line describing the machine a benchmark ran on (recorded beside every result). */
export function describeMachine(): string {
  const cpus = os.cpus();
  return [
    `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}`,
    `${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM`,
    `Linux ${os.release()}`,
    `Node.js ${process.versions.node}`,
  ].join(', ');
}

/**
 * Replaces one benchmark's section of docs/benchmarks.md (between its markers), leaving the other
 * suites' sections as they are, so each suite can be re-run on its own.
 */
export function writeBenchmarkSection(id: string, markdown: string): void {
  const begin = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const header =
    '# Benchmarks\n\nWritten by `npm run bench` (each section by its own suite; the machine and any baseline are\n' +
    'measured in the same run as the result). Performance goals are checked here, never by timed assertions in tests.\n';
  const current = existsSync(BENCHMARKS_FILE) ? readFileSync(BENCHMARKS_FILE, 'utf8') : header;
  const section = `${begin}\n${markdown.trim()}\n${end}`;
  const start = current.indexOf(begin);
  const stop = current.indexOf(end);
  const next =
    start >= 0 && stop > start
      ? `${current.slice(0, start)}${section}${current.slice(stop + end.length)}`
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(BENCHMARKS_FILE, next);
}
