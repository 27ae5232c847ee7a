import { describe, expect, it } from 'vitest';
import { REDACTED, redactSecretKeys, SECRET_KEY_DEPTH } from './redaction';

describe('redactSecretKeys', () => {
  it('redacts secret-named keys at any depth, in objects and arrays, ignoring case', () => {
    const input = {
      password: 'p',
      user: { name: 'Ada', ACCESS_TOKEN: 'a', RefreshToken: 'r' },
      a: { b: { c: { d: { apiKey: 'k' } } } },
      list: [{ secret: 's' }, 'plain', 3],
      headers: { Authorization: 'Basic x', Cookie: 'sid=1', 'Set-Cookie': 'sid=2' },
    };
    expect(redactSecretKeys(input)).toEqual({
      password: REDACTED,
      user: { name: 'Ada', ACCESS_TOKEN: REDACTED, RefreshToken: REDACTED },
      a: { b: { c: { d: { apiKey: REDACTED } } } },
      list: [{ secret: REDACTED }, 'plain', 3],
      headers: { Authorization: REDACTED, Cookie: REDACTED, 'Set-Cookie': REDACTED },
    });
  });

  it('never mutates its input and copies only changed branches', () => {
    const untouched = { id: 'ord_1', lines: [{ sku: 'a' }] };
    const input = { token: 't', untouched };
    const output = redactSecretKeys(input);
    expect(input.token).toBe('t');
    expect(output.untouched).toBe(untouched);
  });

  it('returns the same object when nothing is secret', () => {
    const input = { orderId: 'ord_1', items: [{ qty: 2 }], nested: { ok: true } };
    expect(redactSecretKeys(input)).toBe(input);
  });

  it('redacts a secret key whatever its value, except undefined', () => {
    expect(redactSecretKeys({ token: { nested: 1 }, password: null, secret: undefined })).toEqual({
      token: REDACTED,
      password: REDACTED,
      secret: undefined,
    });
  });

  it('leaves class instances (errors, dates, buffers) to their serializers', () => {
    const error = Object.assign(new Error('x'), { password: 'p' });
    const date = new Date(0);
    const output = redactSecretKeys({ error, date });
    expect(output.error).toBe(error);
    expect(output.date).toBe(date);
  });

  it('stops at its depth bound, so a cycle cannot hang it', () => {
    type Node = { next?: Node; token?: string };
    const cycle: Node = { token: 't' };
    cycle.next = cycle;
    const output = redactSecretKeys(cycle);
    expect(output.token).toBe(REDACTED);
    let deepest: Node | undefined = output;
    for (let depth = 0; depth < SECRET_KEY_DEPTH; depth += 1) deepest = deepest?.next;
    expect(deepest?.token).toBe(REDACTED);
  });

  it('accepts its own key set', () => {
    expect(redactSecretKeys({ ssn: '1', password: 'p' }, new Set(['ssn']))).toEqual({
      ssn: REDACTED,
      password: 'p',
    });
  });
});
