import { isAppError } from '@bazaar/errors';
import { openDeadLetterAdmin, type DeadLetter } from './dead-letters';

export const DLQ_USAGE = `Usage: npm run dlq -- <command> <consumer-group> [options]

Commands:
  list <group> [--limit <n>] [--json]   show dead letters (id, type, reason, error, attempts, failed-at) without removing them
  replay <group> [--id <event-id>]      move them back to the group's work queue, starting over at attempt 1
  drop <group> (--id <event-id> | --all) delete them

The broker is RABBITMQ_URL, or the local stack's (BAZAAR_PROFILE, default dev).
`;

/** Where the command writes. */
export interface DlqOutput {
  out(text: string): void;
  err(text: string): void;
}

interface ParsedArgs {
  readonly command: string | undefined;
  readonly group: string | undefined;
  readonly eventId: string | undefined;
  readonly limit: number;
  readonly isAll: boolean;
  readonly isJson: boolean;
}

function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  let eventId: string | undefined;
  let limit = 100;
  let isAll = false;
  let isJson = false;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index];
    if (arg === '--id') eventId = argv[(index += 1)];
    else if (arg === '--limit') limit = Number(argv[(index += 1)]);
    else if (arg === '--all') isAll = true;
    else if (arg === '--json') isJson = true;
    else if (arg !== undefined) positional.push(arg);
  }
  return { command: positional[0], group: positional[1], eventId, limit, isAll, isJson };
}

function table(letters: readonly DeadLetter[]): string {
  const rows = letters.map((letter) => [
    letter.eventId ?? '-',
    letter.type ?? '-',
    letter.reason ?? '-',
    String(letter.attempts),
    letter.failedAt ?? '-',
    (letter.error ?? '-').replace(/\s+/g, ' ').slice(0, 120),
  ]);
  const header = ['EVENT ID', 'TYPE', 'REASON', 'ATTEMPTS', 'FAILED AT', 'ERROR'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * `npm run dlq -- list|replay|drop <group>`: returns the exit code (0 done, 1 failed, 2 usage).
 */
export async function runDlqCommand(
  argv: readonly string[],
  brokerUrl: () => Promise<string>,
  output: DlqOutput,
): Promise<number> {
  const args = parseArgs(argv);
  const isKnown = args.command === 'list' || args.command === 'replay' || args.command === 'drop';
  if (!isKnown || args.group === undefined || !Number.isInteger(args.limit) || args.limit < 1) {
    output.err(DLQ_USAGE);
    return 2;
  }
  if (args.command === 'drop' && args.eventId === undefined && !args.isAll) {
    output.err('drop needs --id <event-id>, or --all to delete every dead letter of the group\n');
    return 2;
  }
  try {
    const admin = await openDeadLetterAdmin(await brokerUrl());
    try {
      const selection = args.eventId === undefined ? {} : { eventId: args.eventId };
      if (args.command === 'list') {
        const letters = await admin.list(args.group, { limit: args.limit });
        output.out(
          args.isJson
            ? `${JSON.stringify(letters, null, 2)}\n`
            : letters.length === 0
              ? `${args.group}.dlq is empty\n`
              : `${table(letters)}\n`,
        );
      } else if (args.command === 'replay') {
        const moved = await admin.replay(args.group, selection);
        output.out(`replayed ${moved} message(s) from ${args.group}.dlq to ${args.group}\n`);
      } else {
        const dropped = await admin.drop(args.group, selection);
        output.out(`dropped ${dropped} message(s) from ${args.group}.dlq\n`);
      }
      return 0;
    } finally {
      await admin.close();
    }
  } catch (error) {
    const message = isAppError(error) || error instanceof Error ? error.message : String(error);
    output.err(`dlq ${args.command}: ${message}\n`);
    return 1;
  }
}
