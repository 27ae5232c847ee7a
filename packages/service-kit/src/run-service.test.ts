import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createApp } from './app';
import { createKitFixture } from './kit.fixture';
import { runService, type Closer } from './run-service';

interface StartOptions {
  shutdownTimeoutMs?: number;
  onShutdown?: Closer[];
}

async function start(options: StartOptions = {}) {
  const fixture = createKitFixture();
  const app = createApp(fixture.deps);
  app.get('/slow', async () => {
    await sleep(150);
    return { done: true };
  });
  const exits: number[] = [];
  const service = await runService({
    app,
    config: { HOST: '127.0.0.1', PORT: 0, SHUTDOWN_TIMEOUT_MS: options.shutdownTimeoutMs ?? 2000 },
    logger: fixture.deps.logger,
    telemetry: fixture.telemetry,
    onShutdown: options.onShutdown ?? [],
    signals: [],
    handleProcessErrors: false,
    exit: (code) => void exits.push(code),
  });
  return { service, exits, app, ...fixture };
}

describe('runService', () => {
  it('listens on the configured host and reports the bound port', async () => {
    const { service } = await start();
    expect(service.url).toBe(`http://127.0.0.1:${service.port}`);
    const response = await fetch(`${service.url}/livez`);
    expect(response.status).toBe(200);
    await service.shutdown('test');
  });

  it('lets in-flight requests finish, refuses new connections, closes in reverse order, exits 0', async () => {
    const order: string[] = [];
    const { service, exits, logLines } = await start({
      onShutdown: [
        { name: 'pool', close: () => void order.push('pool') },
        { name: 'consumer', close: () => Promise.resolve(void order.push('consumer')) },
        { name: 'registry', close: () => void order.push('registry') },
      ],
    });
    const inFlight = fetch(`${service.url}/slow`);
    await sleep(30);
    const exitCode = service.shutdown('test');
    await expect(fetch(`${service.url}/livez`)).rejects.toThrow();
    const response = await inFlight;
    expect([response.status, await response.json()]).toEqual([200, { done: true }]);
    expect(await exitCode).toBe(0);
    expect(exits).toEqual([0]);
    expect(order).toEqual(['registry', 'consumer', 'pool']);
    const messages = logLines().map((line) => line.msg);
    expect(messages).toEqual(
      expect.arrayContaining(['shutting down', 'in-flight requests finished', 'shutdown complete']),
    );
  });

  it('exits 1 when in-flight requests outlive SHUTDOWN_TIMEOUT_MS', async () => {
    const { service, exits } = await start({ shutdownTimeoutMs: 30 });
    const inFlight = fetch(`${service.url}/slow`).catch((error: unknown) => error);
    await sleep(20);
    expect(await service.shutdown('test')).toBe(1);
    expect(exits).toEqual([1]);
    expect(await inFlight).toBeInstanceOf(Error);
  });

  it('bounds each closer by its deadline, runs the rest, and exits 1', async () => {
    const order: string[] = [];
    const { service, exits, logLines } = await start({
      onShutdown: [
        { name: 'pool', close: () => void order.push('pool') },
        { name: 'stuck', timeoutMs: 30, close: () => new Promise<void>(() => undefined) },
        {
          name: 'broken',
          close: () => {
            throw new Error('already closed');
          },
        },
      ],
    });
    expect(await service.shutdown('test')).toBe(1);
    expect(exits).toEqual([1]);
    expect(order).toEqual(['pool']);
    const failures = logLines().filter((line) => line.msg === 'closer failed');
    expect(failures.map((line) => line.closer)).toEqual(['broken', 'stuck']);
  });

  it('shuts down once however often it is asked', async () => {
    const { service, exits } = await start();
    const [first, second] = await Promise.all([service.shutdown('a'), service.shutdown('b')]);
    expect([first, second]).toEqual([0, 0]);
    expect(exits).toEqual([0]);
  });
});
