import { hostname } from 'node:os';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type LoggerOptions } from './logger';
import { REDACTED } from './redaction';
import { REDACTED_PAN, REDACTED_TOKEN } from './sensitive-text';

type Line = Record<string, unknown>;

/** A logger writing into memory, and the JSON lines it wrote so far. */
function capture(options: Partial<LoggerOptions> = {}) {
  const chunks: string[] = [];
  const logger = createLogger({
    service: 'payments',
    instanceId: 'payments-1',
    ...options,
    destination: { write: (chunk: string) => void chunks.push(chunk) },
  });
  const lines = (): Line[] => {
    const text = chunks.join('');
    expect(text.endsWith('\n')).toBe(true);
    return text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Line);
  };
  const only = (): Line => {
    const all = lines();
    expect(all).toHaveLength(1);
    return all[0] ?? {};
  };
  return { logger, lines, only };
}

const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.dGhpcy1pcy1hLXNpZ25hdHVyZQ';

describe('createLogger', () => {
  it('writes one JSON line with service, instance, level label, ISO time and message', () => {
    const { logger, only } = capture();
    logger.info({ orderId: 'ord_1' }, 'placed');
    const line = only();
    expect(line).toMatchObject({
      level: 'info',
      service: 'payments',
      instance: 'payments-1',
      orderId: 'ord_1',
      msg: 'placed',
    });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('names the instance after host and pid by default', () => {
    const chunks: string[] = [];
    createLogger({ service: 's', destination: { write: (c: string) => void chunks.push(c) } }).info(
      'x',
    );
    expect(JSON.parse(chunks.join(''))).toMatchObject({ instance: `${hostname()}:${process.pid}` });
  });

  it('writes nothing below its level', () => {
    const { logger, lines } = capture({ level: 'warn' });
    logger.info('hidden');
    logger.warn('shown');
    expect(lines().map((line) => line.msg)).toEqual(['shown']);
  });

  it('serializes errors under err and error', () => {
    const { logger, lines } = capture();
    logger.error({ err: new TypeError('bad input') }, 'failed');
    logger.error({ error: new RangeError('out of range') }, 'failed again');
    const [first, second] = lines();
    expect(first?.err).toMatchObject({ type: 'TypeError', message: 'bad input' });
    expect((first?.err as { stack: string }).stack).toContain('logger.test.ts');
    expect(second?.error).toMatchObject({ type: 'RangeError', message: 'out of range' });
  });
});

describe('trace correlation', () => {
  const manager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    manager.enable();
    context.setGlobalContextManager(manager);
  });
  afterAll(() => {
    context.disable();
  });

  it('adds trace_id and span_id of the active span', () => {
    const { logger, lines } = capture();
    const spanContext = {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
    };
    context.with(trace.setSpanContext(context.active(), spanContext), () => logger.info('inside'));
    logger.info('outside');
    const [inside, outside] = lines();
    expect(inside).toMatchObject({ trace_id: spanContext.traceId, span_id: spanContext.spanId });
    expect(outside).not.toHaveProperty('trace_id');
    expect(outside).not.toHaveProperty('span_id');
  });

  it('adds nothing for an invalid span context', () => {
    const { logger, only } = capture();
    const invalid = { traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 };
    context.with(trace.setSpanContext(context.active(), invalid), () => logger.info('x'));
    expect(only()).not.toHaveProperty('trace_id');
  });
});

describe('redaction', () => {
  it('redacts secret-named keys at any depth', () => {
    const { logger, only } = capture();
    logger.info(
      {
        password: 'hunter2',
        user: { email: 'a@b.c', accessToken: 'at', refreshToken: 'rt' },
        req: { headers: { authorization: 'Basic dTpw', cookie: 'sid=1', 'x-api-key': 'k' } },
        res: { headers: { 'set-cookie': 'sid=2' } },
        client: { clientSecret: 'cs', apiKey: 'ak' },
        config: { db: { secret: 's' } },
        headers: { Authorization: 'Digest x' },
        a: { b: { c: { d: { password: 'deep-secret' } } } },
      },
      'login',
    );
    const line = only();
    expect(line).toMatchObject({
      password: REDACTED,
      user: { email: 'a@b.c', accessToken: REDACTED, refreshToken: REDACTED },
      req: { headers: { authorization: REDACTED, cookie: REDACTED, 'x-api-key': REDACTED } },
      res: { headers: { 'set-cookie': REDACTED } },
      client: { clientSecret: REDACTED, apiKey: REDACTED },
      config: { db: { secret: REDACTED } },
      headers: { Authorization: REDACTED },
      a: { b: { c: { d: { password: REDACTED } } } },
    });
    expect(JSON.stringify(line)).not.toMatch(/hunter2|dTpw|sid=|"cs"|"ak"|deep-secret/);
  });

  it('redacts extra paths given in options', () => {
    const { logger, only } = capture({ redactPaths: ['order.shipping.street'] });
    logger.info({ order: { shipping: { street: '1 Main St', city: 'Paris' } } });
    expect(only()).toMatchObject({ order: { shipping: { street: REDACTED, city: 'Paris' } } });
  });

  it('scrubs card numbers and tokens from messages, nested values and errors', () => {
    const { logger, only } = capture();
    const error = new Error('charge failed for 4111 1111 1111 1111', {
      cause: new Error(`upstream said Bearer ${jwt}`),
    });
    logger.error(
      {
        err: error,
        attempt: { note: 'card 5555-5555-5555-4444 declined', list: [`jwt ${jwt}`] },
        amount: 129_999,
        orderId: 'ord_42',
      },
      'payment for %s failed',
      '4111111111111111',
    );
    const line = only();
    const text = JSON.stringify(line);
    expect(text).not.toMatch(/4111|5555|eyJ/);
    expect(line.msg).toBe(`payment for ${REDACTED_PAN} failed`);
    expect(line.attempt).toEqual({
      note: `card ${REDACTED_PAN} declined`,
      list: [`jwt ${REDACTED_TOKEN}`],
    });
    const err = line.err as { message: string; stack: string };
    expect(err.message).toContain(`charge failed for ${REDACTED_PAN}`);
    expect(err.message).toContain(`Bearer ${REDACTED_TOKEN}`);
    expect(err.stack).toContain(REDACTED_PAN);
    expect(line).toMatchObject({ amount: 129_999, orderId: 'ord_42' });
  });

  it('redacts secret-named fields of logged errors', () => {
    const { logger, only } = capture();
    const error = Object.assign(new Error('upstream 401'), {
      request: { headers: { authorization: 'Basic c2VjcmV0' } },
    });
    logger.warn({ err: error }, 'call failed');
    expect(only().err).toMatchObject({
      message: 'upstream 401',
      request: { headers: { authorization: REDACTED } },
    });
  });

  it('scrubs in child loggers and their bindings too', () => {
    const { logger, only } = capture();
    logger.child({ card: '4111111111111111' }).info({ password: 'p' }, 'child');
    expect(only()).toMatchObject({ card: REDACTED_PAN, password: REDACTED, msg: 'child' });
  });
});
