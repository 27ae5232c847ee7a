import type { Channel } from 'amqplib';

/** The one topic exchange every event is published to; the routing key is the event type. */
export const EVENTS_EXCHANGE = 'bazaar.events';

// Group names become queue names: `<service>.<purpose>`, e.g. `payments.order-placed`.
const GROUP_NAME = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$/;

/** The names of a consumer group's queues. */
export interface GroupQueues {
  /** The work queue the group's consumers read (quorum), bound to the exchange per event type. */
  readonly work: string;
  /** One delay queue per retry tier (quorum, per-queue TTL), dead-lettering back into `work`. */
  readonly retries: readonly { readonly name: string; readonly delayMs: number }[];
  /** Where messages end after their last attempt or when they are invalid (quorum). */
  readonly deadLetter: string;
}

/** `1000` → `1s`, `1500` → `1500ms`, `60000` → `60s`: the tier part of a delay queue's name. */
export function formatDelay(delayMs: number): string {
  return delayMs % 1000 === 0 ? `${delayMs / 1000}s` : `${delayMs}ms`;
}

/** Throws unless `group` can name queues (lower-case words separated by dots). */
export function assertGroupName(group: string): void {
  if (!GROUP_NAME.test(group) || group.length > 200) {
    throw new TypeError(
      `consumer group "${group}" must be lower-case words separated by dots, e.g. "payments.order-placed"`,
    );
  }
}

/** The queue names of `group` with the given retry delays (e.g. `[1000, 5000, 30000]`). */
export function groupQueues(group: string, retryDelaysMs: readonly number[]): GroupQueues {
  assertGroupName(group);
  return {
    work: group,
    retries: [...new Set(retryDelaysMs)].map((delayMs) => ({
      name: `${group}.retry.${formatDelay(delayMs)}`,
      delayMs,
    })),
    deadLetter: `${group}.dlq`,
  };
}

/**
 * Quorum queues replicate through Raft and survive a broker crash with every confirmed message.
 * Dead-lettering from them (TTL expiry, delivery limit) is at-least-once only with
 * `x-dead-letter-strategy: at-least-once`, which in turn needs `x-overflow: reject-publish`.
 * https://www.rabbitmq.com/docs/quorum-queues#dead-lettering
 */
const QUORUM: Readonly<Record<string, unknown>> = { 'x-queue-type': 'quorum' };

/** The arguments each of a group's queues is declared with (exported for the tests and the README). */
export function queueArguments(
  queues: GroupQueues,
  deliveryLimit: number,
): Record<string, Record<string, unknown>> {
  const deadLetterTo = (queue: string) => ({
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': queue,
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  });
  const args: Record<string, Record<string, unknown>> = {
    // A message that keeps coming back unacknowledged (it crashes every consumer that takes it) is
    // moved to the DLQ by the broker after `deliveryLimit` deliveries, instead of looping forever.
    [queues.work]: {
      ...QUORUM,
      'x-delivery-limit': deliveryLimit,
      ...deadLetterTo(queues.deadLetter),
    },
    [queues.deadLetter]: { ...QUORUM },
  };
  for (const retry of queues.retries) {
    // One TTL per queue, so the head always expires first and nothing waits behind a longer delay.
    args[retry.name] = { ...QUORUM, 'x-message-ttl': retry.delayMs, ...deadLetterTo(queues.work) };
  }
  return args;
}

/** Declares the exchange (durable topic). Idempotent. */
export async function declareExchange(channel: Channel, exchange = EVENTS_EXCHANGE): Promise<void> {
  await channel.assertExchange(exchange, 'topic', { durable: true });
}

/**
 * Declares a group's queues and binds its work queue to each event type it handles. Idempotent;
 * bindings for types the group no longer handles are left alone (unbind them in a migration).
 */
export async function declareGroup(
  channel: Channel,
  queues: GroupQueues,
  eventTypes: readonly string[],
  deliveryLimit: number,
  exchange = EVENTS_EXCHANGE,
): Promise<void> {
  await declareExchange(channel, exchange);
  for (const [name, args] of Object.entries(queueArguments(queues, deliveryLimit))) {
    await channel.assertQueue(name, { durable: true, arguments: args });
  }
  for (const type of eventTypes) await channel.bindQueue(queues.work, exchange, type);
}
