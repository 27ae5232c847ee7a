import { describe, expect, it } from 'vitest';
import { reconnectDelayMs, withHeartbeat } from './broker-connection';

describe('reconnectDelayMs', () => {
  it('draws from a window that doubles per failure up to the cap', () => {
    const top = () => 0.999_999;
    expect(
      [1, 2, 3, 4, 5, 6, 10].map((failures) => reconnectDelayMs(failures, 200, 5000, top)),
    ).toEqual([199, 399, 799, 1599, 3199, 4999, 4999]);
  });

  it('is fully jittered: anywhere from zero', () => {
    expect(reconnectDelayMs(3, 200, 5000, () => 0)).toBe(0);
    expect(reconnectDelayMs(3, 200, 5000, () => 0.5)).toBe(400);
  });

  it('waits nothing before the first attempt and never overflows', () => {
    expect(reconnectDelayMs(0, 200, 5000)).toBe(0);
    expect(reconnectDelayMs(5000, 200, 5000, () => 0.5)).toBe(2500);
  });
});

describe('withHeartbeat', () => {
  it('adds the heartbeat to the URL, keeping credentials and vhost', () => {
    expect(withHeartbeat('amqp://u:p%40ss@127.0.0.1:5672/vh', 5)).toBe(
      'amqp://u:p%40ss@127.0.0.1:5672/vh?heartbeat=5',
    );
  });

  it('keeps a heartbeat the URL sets itself', () => {
    expect(withHeartbeat('amqp://127.0.0.1?heartbeat=30', 5)).toBe('amqp://127.0.0.1?heartbeat=30');
  });
});
