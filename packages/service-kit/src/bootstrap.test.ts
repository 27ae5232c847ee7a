import { serviceEnv } from '@bazaar/config';
import { describe, expect, it } from 'vitest';
import { bootstrapService } from './bootstrap';

describe('bootstrapService', () => {
  it('returns the parsed config with a logger and telemetry built from it', async () => {
    const parsed = serviceEnv.parse({
      PORT: '4999',
      LOG_LEVEL: 'warn',
      SERVICE_INSTANCE_ID: 'x-1',
    });
    const { config, logger, telemetry } = bootstrapService('bootstrap-test', () => parsed);
    expect(config).toBe(parsed);
    expect(logger.level).toBe('warn');
    // The telemetry resource carries the service name and the configured instance id.
    expect((await telemetry.renderMetrics()).body).toMatch(
      /target_info\{service_name="bootstrap-test",service_instance_id="x-1"/,
    );
    await telemetry.shutdown();
  });

  it('exits with 1 when the configuration is invalid, before anything starts', () => {
    const exits: number[] = [];
    expect(() =>
      bootstrapService(
        'bootstrap-test',
        () => {
          throw new Error('PORT: expected a number');
        },
        (code) => {
          exits.push(code);
          throw new Error('exited');
        },
      ),
    ).toThrow('exited');
    expect(exits).toEqual([1]);
  });
});
