import { describe, expect, it } from 'vitest';
import {
  attemptOf,
  deadLetterHeaders,
  describeError,
  HEADER,
  MAX_ERROR_LENGTH,
  replayHeaders,
  retryHeaders,
  textHeaders,
} from './message-headers';

describe('attemptOf', () => {
  it.each([
    [undefined, 1],
    [{}, 1],
    [{ [HEADER.attempt]: 3 }, 3],
    [{ [HEADER.attempt]: '2' }, 2],
    [{ [HEADER.attempt]: 0 }, 1],
    [{ [HEADER.attempt]: 'x' }, 1],
    [{ [HEADER.attempt]: 2.5 }, 1],
  ])('%o → %d', (headers, attempt) => {
    expect(attemptOf(headers)).toBe(attempt);
  });
});

describe('retryHeaders', () => {
  it('counts the attempt, records the error and the first routing key, and drops the broker history', () => {
    const headers = retryHeaders(
      { traceparent: 'tp', 'x-first-death-queue': 'q', 'x-delivery-count': 2 },
      'order.placed.v1',
      2,
      new TypeError('boom'),
    );
    expect(headers).toEqual({
      traceparent: 'tp',
      [HEADER.attempt]: 2,
      [HEADER.error]: 'TypeError: boom',
      [HEADER.routingKey]: 'order.placed.v1',
    });
  });

  it('keeps the original routing key when the message came back through the default exchange', () => {
    const headers = retryHeaders(
      { [HEADER.routingKey]: 'order.placed.v1', [HEADER.attempt]: 2 },
      'payments.orders',
      3,
      'x',
    );
    expect(headers[HEADER.routingKey]).toBe('order.placed.v1');
    expect(headers[HEADER.attempt]).toBe(3);
  });
});

describe('deadLetterHeaders', () => {
  it('records reason, error, time, attempt and routing key', () => {
    const now = new Date('2026-01-02T03:04:05.000Z');
    expect(
      deadLetterHeaders(
        { traceparent: 'tp' },
        'order.placed.v1',
        4,
        'handler-failed',
        new Error('db down'),
        now,
      ),
    ).toEqual({
      traceparent: 'tp',
      [HEADER.attempt]: 4,
      [HEADER.reason]: 'handler-failed',
      [HEADER.error]: 'db down',
      [HEADER.failedAt]: '2026-01-02T03:04:05.000Z',
      [HEADER.routingKey]: 'order.placed.v1',
    });
  });
});

describe('replayHeaders', () => {
  it('starts over at attempt 1 but keeps trace context and the routing key', () => {
    const dead = deadLetterHeaders(
      { traceparent: 'tp', 'x-death': [] },
      'a.b.v1',
      4,
      'invalid',
      'bad',
    );
    expect(replayHeaders(dead)).toEqual({ traceparent: 'tp', [HEADER.routingKey]: 'a.b.v1' });
    expect(attemptOf(replayHeaders(dead))).toBe(1);
  });
});

describe('describeError', () => {
  it('cuts long messages', () => {
    const text = describeError(new Error('x'.repeat(5000)));
    expect(text).toHaveLength(MAX_ERROR_LENGTH);
    expect(text.endsWith('…')).toBe(true);
  });

  it('describes non-errors', () => {
    expect(describeError({ toString: () => 'odd' })).toBe('odd');
  });
});

describe('textHeaders', () => {
  it('keeps strings, decodes buffers and numbers, skips tables', () => {
    expect(
      textHeaders({ traceparent: Buffer.from('tp'), tracestate: 'a=b', n: 1, t: { x: 1 } }),
    ).toEqual({ traceparent: 'tp', tracestate: 'a=b', n: '1' });
  });
});
