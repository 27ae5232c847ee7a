import { describe, expect, it } from 'vitest';
import { clientAddressOf } from './app';

const trusted = new Set(['127.0.0.1']);

describe('clientAddressOf', () => {
  it('believes X-Forwarded-For only from a trusted proxy, and only its rightmost untrusted hop', () => {
    expect(clientAddressOf('10.0.0.9', '1.2.3.4', trusted)).toBe('10.0.0.9');
    expect(clientAddressOf('127.0.0.1', undefined, trusted)).toBe('127.0.0.1');
    expect(clientAddressOf('127.0.0.1', '203.0.113.7', trusted)).toBe('203.0.113.7');
    // A client forging an address to the left does not escape its own limit.
    expect(clientAddressOf('127.0.0.1', '6.6.6.6, 203.0.113.7', trusted)).toBe('203.0.113.7');
    expect(clientAddressOf('127.0.0.1', '203.0.113.7, 127.0.0.1', trusted)).toBe('203.0.113.7');
  });
});
