import { describe, expect, it } from 'vitest';
import { Wakeup } from './wakeup';

const never = 60_000;

describe('Wakeup', () => {
  it('ends every wait at wake()', async () => {
    const wakeup = new Wakeup();
    const waits = [wakeup.wait(never), wakeup.wait(never)];
    wakeup.wake();
    await expect(Promise.all(waits)).resolves.toEqual([undefined, undefined]);
  });

  it('remembers a wake() that came while nobody waited, once', async () => {
    const wakeup = new Wakeup();
    wakeup.wake();
    await wakeup.wait(never);
    let isEnded = false;
    const second = wakeup.wait(20).then(() => {
      isEnded = true;
    });
    await Promise.resolve();
    expect(isEnded).toBe(false);
    await second;
  });

  it('ends a wait after its interval', async () => {
    await expect(new Wakeup().wait(5)).resolves.toBeUndefined();
  });

  it('ends a wait when the signal aborts', async () => {
    const controller = new AbortController();
    const waiting = new Wakeup().wait(never, controller.signal);
    controller.abort();
    await expect(waiting).resolves.toBeUndefined();
  });
});
