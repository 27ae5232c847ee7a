import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ComponentSpec } from '../src/components';
import { cleanUp, component, scratchDir, supervise } from './supervisor.fixture';

// A component that follows another's instances (the edge follows the gateway's): the follower
// counts the reload signals it receives in a file.
afterEach(cleanUp);

describe('Supervisor: components that follow another', () => {
  it('rewrites the follower for the scaled instances and sends it its reload signal', async () => {
    const seen: number[][] = [];
    const hupFile = path.join(scratchDir('bazaar-hup-'), 'hups');
    const follower: ComponentSpec = {
      ...component('front', { env: { HUP_FILE: hupFile } }),
      dependsOn: ['api'],
      scalable: false,
      follows: {
        component: 'api',
        reconfigure: (_ctx, ports) => {
          seen.push([...ports]);
          return Promise.resolve();
        },
        signal: 'SIGHUP',
      },
    };
    const { supervisor } = supervise([component('api'), follower]);
    await supervisor.up(undefined, () => undefined);
    const frontPid = supervisor.status().find((s) => s.name === 'front')?.pid;
    const hups = () => (existsSync(hupFile) ? readFileSync(hupFile, 'utf8') : '');

    await supervisor.scale('api', 2, () => undefined);
    const apiPorts = supervisor
      .status()
      .filter((s) => s.name === 'api')
      .map((s) => s.port);
    expect(apiPorts).toHaveLength(2);
    expect(seen).toEqual([apiPorts]);
    await expect.poll(hups).toBe('hup;');

    await supervisor.scale('api', 1, () => undefined);
    expect(seen.at(-1)).toEqual([apiPorts[0]]);
    await expect.poll(hups).toBe('hup;hup;');
    // Reloaded, not restarted.
    const front = supervisor.status().find((s) => s.name === 'front');
    expect(front?.pid).toBe(frontPid);
    expect(front?.state).toBe('ready');
  });
});
