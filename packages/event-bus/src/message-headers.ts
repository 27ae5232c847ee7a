import type { MessagePropertyHeaders } from 'amqplib';

/** Headers this package reads and writes on messages (AMQP header table entries). */
export const HEADER = {
  /** Which attempt this delivery is: absent on the first, 2 on the first retry, … */
  attempt: 'x-bazaar-attempt',
  /** Why the last attempt failed (on retry copies and in the DLQ). */
  error: 'x-bazaar-error',
  /** `handler-failed`, `invalid` or `no-handler` (in the DLQ). */
  reason: 'x-bazaar-reason',
  /** When the message was dead-lettered (ISO 8601, in the DLQ). */
  failedAt: 'x-bazaar-failed-at',
  /** The routing key the message first arrived with: its event type. */
  routingKey: 'x-bazaar-routing-key',
} as const;

/** Why a message went to the DLQ. */
export type DeadLetterReason = 'handler-failed' | 'invalid' | 'no-handler';

/** Longest error text kept in a header: headers travel with every copy, so they stay small. */
export const MAX_ERROR_LENGTH = 1000;

function headerNumber(value: unknown): number | undefined {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number >= 1 ? number : undefined;
}

/** The attempt number of a delivery (1 when the header is absent or unreadable). */
export function attemptOf(headers: MessagePropertyHeaders | undefined): number {
  return headerNumber(headers?.[HEADER.attempt]) ?? 1;
}

/** A header's value as text, or `undefined` when absent (AMQP long strings may arrive as Buffers). */
export function headerText(
  headers: MessagePropertyHeaders | undefined,
  name: string,
): string | undefined {
  const value: unknown = headers?.[name];
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** The string-valued headers, as a carrier for W3C trace context extraction. */
export function textHeaders(headers: MessagePropertyHeaders | undefined): Record<string, string> {
  const carrier: Record<string, string> = {};
  for (const name of Object.keys(headers ?? {})) {
    const text = headerText(headers, name);
    if (text !== undefined) carrier[name] = text;
  }
  return carrier;
}

/** An error as one short line: its name and message, cut to {@link MAX_ERROR_LENGTH}. */
export function describeError(error: unknown): string {
  const text =
    error instanceof Error
      ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`
      : String(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}

/** The headers of the copy that waits in a delay queue before attempt `nextAttempt`. */
export function retryHeaders(
  headers: MessagePropertyHeaders | undefined,
  routingKey: string,
  nextAttempt: number,
  error: unknown,
): MessagePropertyHeaders {
  return {
    ...withoutBrokerHeaders(headers),
    [HEADER.attempt]: nextAttempt,
    [HEADER.error]: describeError(error),
    [HEADER.routingKey]: headerText(headers, HEADER.routingKey) ?? routingKey,
  };
}

/** The headers of the copy that goes to the DLQ. */
export function deadLetterHeaders(
  headers: MessagePropertyHeaders | undefined,
  routingKey: string,
  attempt: number,
  reason: DeadLetterReason,
  error: unknown,
  now: Date = new Date(),
): MessagePropertyHeaders {
  return {
    ...withoutBrokerHeaders(headers),
    [HEADER.attempt]: attempt,
    [HEADER.reason]: reason,
    [HEADER.error]: describeError(error),
    [HEADER.failedAt]: now.toISOString(),
    [HEADER.routingKey]: headerText(headers, HEADER.routingKey) ?? routingKey,
  };
}

/**
 * The headers of a message replayed from the DLQ: what it was first published with, so it starts over
 * at attempt 1 (the failure bookkeeping and the broker's own `x-death` history are dropped).
 */
export function replayHeaders(headers: MessagePropertyHeaders | undefined): MessagePropertyHeaders {
  const replayed = withoutBrokerHeaders(headers);
  for (const name of Object.values(HEADER)) {
    if (name !== HEADER.routingKey) delete replayed[name];
  }
  return replayed;
}

// The broker adds these; copying them onto a new message would make its history lie.
const BROKER_HEADERS = [
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-delivery-count',
];

function withoutBrokerHeaders(headers: MessagePropertyHeaders | undefined): MessagePropertyHeaders {
  const copy: MessagePropertyHeaders = { ...headers };
  for (const name of BROKER_HEADERS) delete copy[name];
  return copy;
}
