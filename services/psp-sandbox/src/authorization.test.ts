import { describe, expect, it } from 'vitest';
import { decide } from './authorization';

describe('decide', () => {
  it('knows the sandbox test tokens', () => {
    expect(decide('tok_visa')).toEqual({ kind: 'approve', delayed: false });
    expect(decide('tok_slow')).toEqual({ kind: 'approve', delayed: true });
    expect(decide('tok_chargeDeclined')).toEqual({ kind: 'decline', reason: 'card_declined' });
    expect(decide('tok_insufficientFunds')).toEqual({
      kind: 'decline',
      reason: 'insufficient_funds',
    });
  });

  it('treats anything else as an unknown token, prototype names included', () => {
    for (const token of [
      'tok_mastercard',
      'TOK_VISA',
      '',
      'constructor',
      '__proto__',
      'toString',
    ]) {
      expect(decide(token), token).toEqual({ kind: 'unknown_token' });
    }
  });
});
