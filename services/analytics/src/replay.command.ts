// `npm run replay -w @bazaar/analytics -- [--input <file.ndjson> | --export <file.ndjson>]`:
//   (no option)      rebuild every fact table from the raw events (the retained log), in one transaction
//   --input <file>   append the events of an NDJSON export (one CloudEvent per line), exactly once
//   --export <file>  write every raw event as NDJSON, oldest first (what --input reads)
// All three are idempotent: running one twice leaves the warehouse as running it once.
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { validateEvent, type BazaarEvent } from '@bazaar/contracts';
import type { Warehouse } from './warehouse';

export interface ReplayIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const USAGE =
  'usage: npm run replay -w @bazaar/analytics [-- --input <events.ndjson> | --export <events.ndjson>]\n';

type Mode =
  | { readonly kind: 'rebuild' }
  | { readonly kind: 'input'; readonly file: string }
  | { readonly kind: 'export'; readonly file: string };

export function parseReplayArgs(args: readonly string[]): Mode | undefined {
  if (args.length === 0) return { kind: 'rebuild' };
  const [flag, file, ...rest] = args;
  if (rest.length > 0 || file === undefined || file.startsWith('--')) return undefined;
  if (flag === '--input') return { kind: 'input', file };
  if (flag === '--export') return { kind: 'export', file };
  return undefined;
}

const INPUT_BATCH = 5_000;

async function importFile(warehouse: Warehouse, file: string, io: ReplayIo): Promise<number> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let batch: BazaarEvent[] = [];
  let inserted = 0;
  let duplicates = 0;
  let invalid = 0;
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber += 1;
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      invalid += 1;
      io.err(`line ${lineNumber}: not JSON\n`);
      continue;
    }
    const result = validateEvent(parsed);
    if (!result.ok) {
      invalid += 1;
      const first = result.errors[0];
      io.err(`line ${lineNumber}: ${first ? `${first.path} ${first.message}` : 'invalid'}\n`);
      continue;
    }
    batch.push(result.event);
    if (batch.length >= INPUT_BATCH) {
      const written = await warehouse.append(batch);
      inserted += written.inserted;
      duplicates += written.duplicates;
      batch = [];
    }
  }
  if (batch.length > 0) {
    const written = await warehouse.append(batch);
    inserted += written.inserted;
    duplicates += written.duplicates;
  }
  io.out(
    `${file}: ${inserted} events added, ${duplicates} already present, ${invalid} invalid lines skipped\n`,
  );
  return invalid === 0 ? 0 : 1;
}

async function exportFile(warehouse: Warehouse, file: string, io: ReplayIo): Promise<number> {
  const output = createWriteStream(file, { flags: 'w' });
  let count = 0;
  for await (const page of warehouse.readEvents()) {
    const text = page.map((event) => JSON.stringify(event)).join('\n') + '\n';
    if (!output.write(text)) await once(output, 'drain');
    count += page.length;
  }
  output.end();
  await once(output, 'finish');
  io.out(`${file}: ${count} events exported\n`);
  return 0;
}

/** Runs the command; resolves to the exit code (0 done, 1 failed, 2 usage). */
export async function runReplay(
  args: readonly string[],
  openWarehouse: () => Promise<Warehouse>,
  io: ReplayIo,
): Promise<number> {
  const mode = parseReplayArgs(args);
  if (mode === undefined) {
    io.err(USAGE);
    return 2;
  }
  let warehouse: Warehouse;
  try {
    warehouse = await openWarehouse();
  } catch (error) {
    io.err(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  try {
    if (mode.kind === 'input') return await importFile(warehouse, mode.file, io);
    if (mode.kind === 'export') return await exportFile(warehouse, mode.file, io);
    const started = performance.now();
    const { events } = await warehouse.rebuildFacts();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    io.out(`facts rebuilt from ${events} raw events in ${seconds} s\n`);
    return 0;
  } catch (error) {
    io.err(`replay failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await warehouse.close();
  }
}
