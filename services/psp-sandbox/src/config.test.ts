import { ConfigError } from '@bazaar/config';
import { describe, expect, it } from 'vitest';
import { readConfig } from './config';

describe('psp-sandbox config', () => {
  it('has the documented defaults', () => {
    expect(readConfig({})).toMatchObject({
      PORT: 4004,
      HOST: '127.0.0.1',
      PSP_SANDBOX_SLOW_DELAY_MS: 3000,
      PSP_SANDBOX_IDEMPOTENCY_TTL_MS: 86_400_000,
      PSP_SANDBOX_IDEMPOTENCY_MAX_KEYS: 100_000,
    });
  });

  it('reads its own variables', () => {
    const config = readConfig({
      PORT: '5004',
      PSP_SANDBOX_SLOW_DELAY_MS: '250ms',
      PSP_SANDBOX_IDEMPOTENCY_TTL_MS: '1h',
    });
    expect([
      config.PORT,
      config.PSP_SANDBOX_SLOW_DELAY_MS,
      config.PSP_SANDBOX_IDEMPOTENCY_TTL_MS,
    ]).toEqual([5004, 250, 3_600_000]);
  });

  it('refuses a bad environment, naming every variable', () => {
    expect(() => readConfig({ PORT: 'x', PSP_SANDBOX_SLOW_DELAY_MS: 'soon' })).toThrow(ConfigError);
    expect(() => readConfig({ PORT: 'x', PSP_SANDBOX_SLOW_DELAY_MS: 'soon' })).toThrow(
      /PORT: .*\n.*PSP_SANDBOX_SLOW_DELAY_MS: /,
    );
  });
});
