import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { createLogger, type Logger } from '@bazaar/logging';
import type { BusEvent, EventValidator } from '../src/index';
import { groupQueues } from '../src/index';

/** The event type the tests publish: `data.n` must be an integer. */
export const TEST_TYPE = 'bus-test.happened.v1';

export type TestEvent = BusEvent<{ n: number; note?: string }>;

/** A CloudEvent of {@link TEST_TYPE}. */
export function testEvent(n: number, overrides: Partial<TestEvent> = {}): TestEvent {
  return {
    specversion: '1.0',
    id: randomUUID(),
    type: TEST_TYPE,
    source: '/event-bus-test',
    time: new Date().toISOString(),
    data: { n },
    ...overrides,
  };
}

/** The tests' stand-in for the contracts' validator: `data.n` must be an integer. */
export const validateTestEvent: EventValidator = (event) => {
  const data = (event as { data?: { n?: unknown } }).data;
  return Number.isInteger(data?.n)
    ? { ok: true }
    : { ok: false, errors: [{ path: '/data/n', message: 'must be integer' }] };
};

/** Silent: the tests provoke failures that the bus logs as warnings and errors, by design. */
export const testLogger: Logger = createLogger({ service: 'event-bus-test', level: 'silent' });

/** A name no other test uses: `<prefix>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Deletes test groups' queues and the test exchange, so the shared broker does not fill up. */
export async function removeTopology(
  url: string,
  { groups = [], exchange }: { groups?: readonly string[]; exchange?: string },
  retryDelaysMs: readonly number[] = [],
): Promise<void> {
  const model = await connect(url);
  try {
    const channel = await model.createChannel();
    for (const group of groups) {
      const queues = groupQueues(group, retryDelaysMs);
      for (const queue of [queues.work, queues.deadLetter, ...queues.retries.map((r) => r.name)]) {
        await channel.deleteQueue(queue);
      }
    }
    if (exchange !== undefined) await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await model.close();
  }
}

/** Records what a handler received and lets a test wait for a count. */
export class Received<E extends BusEvent = TestEvent> {
  readonly events: E[] = [];
  readonly #waiters: { count: number; resolve: () => void }[] = [];

  readonly handler = (event: E): Promise<void> => {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) {
      if (this.events.length >= waiter.count) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    return Promise.resolve();
  };

  /** Resolves once `count` events arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 20_000): Promise<E[]> {
    if (this.events.length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`received ${this.events.length} of ${count} events`)),
          timeoutMs,
        );
        this.#waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    return this.events;
  }

  ids(): string[] {
    return this.events.map((event) => event.id);
  }
}

/**
 * Resolves once a queue has had no ready messages for two reads in a row, i.e. its consumer took
 * everything that had been published (and, with a handler that resolves at once, settled it).
 */
export async function waitUntilDrained(
  url: string,
  queue: string,
  timeoutMs = 20_000,
): Promise<void> {
  const model = await connect(url);
  try {
    const channel = await model.createChannel();
    const deadline = Date.now() + timeoutMs;
    let emptyReads = 0;
    while (emptyReads < 2) {
      if (Date.now() > deadline) throw new Error(`${queue} did not drain within ${timeoutMs} ms`);
      const { messageCount } = await channel.checkQueue(queue);
      emptyReads = messageCount === 0 ? emptyReads + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await model.close();
  }
}
