import { describe, expect, it } from 'vitest';
import { clientAddressOf } from './client-address';

const gateway = new Set(['10.0.0.2', '127.0.0.1']);

describe('clientAddressOf', () => {
  it('is the socket address when the peer is not a trusted proxy', () => {
    expect(clientAddressOf('203.0.113.9', '198.51.100.1', gateway)).toBe('203.0.113.9');
  });

  it('is the socket address when no proxy is trusted', () => {
    expect(clientAddressOf('127.0.0.1', '198.51.100.1', new Set())).toBe('127.0.0.1');
  });

  it('is the last untrusted hop of X-Forwarded-For behind a trusted proxy', () => {
    expect(clientAddressOf('10.0.0.2', '198.51.100.1', gateway)).toBe('198.51.100.1');
    // A client-supplied first entry is ignored: the gateway appended the real address last.
    expect(clientAddressOf('10.0.0.2', '1.2.3.4, 198.51.100.1', gateway)).toBe('198.51.100.1');
    expect(clientAddressOf('10.0.0.2', '198.51.100.1, 127.0.0.1', gateway)).toBe('198.51.100.1');
  });

  it('reads IPv4-mapped IPv6 as IPv4, and repeated headers as one list', () => {
    expect(clientAddressOf('::ffff:10.0.0.2', ['1.2.3.4', '198.51.100.7'], gateway)).toBe(
      '198.51.100.7',
    );
  });

  it('falls back to the socket address without a header', () => {
    expect(clientAddressOf('10.0.0.2', undefined, gateway)).toBe('10.0.0.2');
    expect(clientAddressOf(undefined, undefined, gateway)).toBe('unknown');
  });
});
