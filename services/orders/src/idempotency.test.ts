import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IDEMPOTENCY_KEY_PATTERN, canonicalJson, requestFingerprint } from './idempotency';

describe('requestFingerprint', () => {
  it('ignores key order and tells different bodies apart', () => {
    const a = { items: [{ productId: 'prd_a', quantity: 1 }], payment: { token: 'tok_visa' } };
    const b = { payment: { token: 'tok_visa' }, items: [{ quantity: 1, productId: 'prd_a' }] };
    expect(requestFingerprint(a)).toBe(requestFingerprint(b));
    expect(requestFingerprint(a)).not.toBe(
      requestFingerprint({ ...a, items: [{ productId: 'prd_a', quantity: 2 }] }),
    );
  });

  it('canonical JSON parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('accepts printable keys up to 255 characters', () => {
    expect(IDEMPOTENCY_KEY_PATTERN.test('8e03978e-40d5-43e8-bc93-6894a57f9324')).toBe(true);
    expect(IDEMPOTENCY_KEY_PATTERN.test('a'.repeat(256))).toBe(false);
    expect(IDEMPOTENCY_KEY_PATTERN.test('has space')).toBe(false);
  });
});
