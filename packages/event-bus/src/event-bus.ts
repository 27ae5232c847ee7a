import { randomUUID } from 'node:crypto';
import { AppError } from '@bazaar/errors';
import type { Logger } from '@bazaar/logging';
import { BrokerConnection } from './broker-connection';
import { GroupConsumer, type Consumer, type EventHandlers } from './consumer';
import { withDeadline } from './deadline';
import { defaultValidator, type BusEvent, type EventMap, type EventValidator } from './event';
import { createBusMetrics } from './metrics';
import { Publisher, type OutgoingMessage } from './publisher';
import { assertRetryPolicy, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy';
import { EVENTS_EXCHANGE, groupQueues } from './topology';

/** Options of {@link createEventBus}. */
export interface EventBusOptions {
  /** `amqp://user:password@host:port/vhost`. */
  readonly url: string;
  readonly logger: Logger;
  /**
   * Checks every event against its schema before it is published and after it is received. Default:
   * `validateEvent` of `@bazaar/contracts`. The envelope's `id`, `type` and `specversion` are checked by
   * the bus in any case.
   */
  readonly validate?: EventValidator;
  /** Names the connections in the broker (`<name>.publish`, `<name>.consume`); the service name. */
  readonly name?: string;
  /** The topic exchange. Default `bazaar.events`. */
  readonly exchange?: string;
  /** AMQP heartbeat. Default 5 s: a silent broker is noticed after about 10 s even when idle. */
  readonly heartbeatSeconds?: number;
  /** Deadline of connecting (TCP + AMQP handshake). Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Deadline of every other broker call (declarations, cancel, close). Default 5000 ms. */
  readonly operationTimeoutMs?: number;
  /** Default deadline of `publish`/`publishBatch`: waiting for a connection plus all confirms. Default 5000 ms. */
  readonly publishTimeoutMs?: number;
  /** Reconnect backoff: full jitter from `baseDelayMs` doubling up to `maxDelayMs`. Default 200 ms → 5 s. */
  readonly reconnect?: { readonly baseDelayMs?: number; readonly maxDelayMs?: number };
}

/** Options of {@link EventBus.consume}. */
export interface ConsumeOptions<M extends EventMap> {
  /**
   * The consumer group, `<service>.<purpose>` (e.g. `payments.order-placed`): it names the work queue,
   * its delay queues and its DLQ. Every instance of the service uses the same group; they compete.
   */
  readonly group: string;
  /** Handlers by event type; the work queue is bound to exactly these types. */
  readonly handlers: EventHandlers<M>;
  /** Unacknowledged deliveries at a time, i.e. handlers running concurrently. Default 32. */
  readonly prefetch?: number;
  /** Default 1 s, 5 s, 30 s, then the DLQ. */
  readonly retry?: RetryPolicy;
  /**
   * Deliveries of one message without acknowledgement (consumers crashing on it) after which the broker
   * moves it to the DLQ itself. Default 20.
   */
  readonly deliveryLimit?: number;
  /** How long `consume` waits for the broker before it gives up. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** How often the work queue's depth is read for the lag gauge. Default 5 s. */
  readonly lagPollMs?: number;
}

/** Per-call options of publishing. */
export interface PublishOptions {
  /** Overrides the bus's `publishTimeoutMs` for this call. */
  readonly timeoutMs?: number;
  /** Extra headers (see {@link OutgoingMessage}). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Publishing and consuming over RabbitMQ; see the package README for the topology and guarantees. */
export interface EventBus {
  /**
   * Publishes one event and resolves when the broker confirmed it (it is then on disk in every queue
   * bound to its type). Rejects with `VALIDATION_FAILED` (nothing sent), `SERVICE_UNAVAILABLE` (no
   * connection, or lost before the confirm) or `UPSTREAM_TIMEOUT` (no confirm within the deadline).
   * Prefer an outbox relay in services: a direct publish is lost if the process dies before it is
   * confirmed.
   */
  publish(event: BusEvent, options?: PublishOptions): Promise<void>;
  /**
   * Publishes many events at once and awaits their confirms together. Never rejects; each outcome is at
   * the index of its message.
   */
  publishBatch(
    messages: readonly OutgoingMessage[],
    options?: Pick<PublishOptions, 'timeoutMs'>,
  ): Promise<PromiseSettledResult<void>[]>;
  /**
   * Declares the group's queues, binds them and starts consuming; resolves once consuming (rejects
   * `SERVICE_UNAVAILABLE` after `startTimeoutMs`). After a reconnect the consumer resumes by itself.
   */
  consume<M extends EventMap = EventMap>(options: ConsumeOptions<M>): Promise<Consumer>;
  /** Whether the connections are open with their channels set up (for `/readyz`). */
  readonly isReady: boolean;
  /** Closes consumers (letting handlers finish), waits for pending confirms, closes the connections. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Creates an event bus and starts connecting (publishing and consuming use separate connections, so
 * broker flow control on publishers never holds back consumers' acknowledgements).
 *
 * @example
 * ```ts
 * const bus = createEventBus({ url: config.RABBITMQ_URL, logger, name: 'payments' });
 * await bus.consume({
 *   group: 'payments.order-placed',
 *   handlers: { 'order.placed.v1': (event) => handleOnce(pool, 'payments.order-placed', event.id, (tx) => authorize(tx, event)).then(() => undefined) },
 * });
 * ```
 */
export function createEventBus(options: EventBusOptions): EventBus {
  const name = options.name ?? 'bazaar';
  const exchange = options.exchange ?? EVENTS_EXCHANGE;
  const operationTimeoutMs = options.operationTimeoutMs ?? 5000;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const metrics = createBusMetrics();
  const validate = options.validate ?? defaultValidator;
  const connectionOptions = (role: string) => ({
    url: options.url,
    logger: options.logger,
    connectionName: `${name}.${role}.${randomUUID().slice(0, 8)}`,
    heartbeatSeconds: options.heartbeatSeconds ?? 5,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    operationTimeoutMs,
    reconnectBaseDelayMs: options.reconnect?.baseDelayMs ?? 200,
    reconnectMaxDelayMs: options.reconnect?.maxDelayMs ?? 5000,
  });
  const publishing = new BrokerConnection(connectionOptions('publish'));
  let consuming: BrokerConnection | undefined;
  const publisher = new Publisher({
    connection: publishing,
    exchange,
    validate,
    metrics,
    logger: options.logger,
  });
  void publishing.add(publisher);
  const consumers = new Set<GroupConsumer>();
  let isClosed = false;

  return {
    async publish(event, publishOptions = {}) {
      const [result] = await publisher.publishBatch(
        [
          publishOptions.headers === undefined
            ? { event }
            : { event, headers: publishOptions.headers },
        ],
        publishOptions.timeoutMs ?? publishTimeoutMs,
      );
      if (result?.status === 'rejected') throw result.reason;
    },

    publishBatch(messages, publishOptions = {}) {
      return publisher.publishBatch(messages, publishOptions.timeoutMs ?? publishTimeoutMs);
    },

    async consume<M extends EventMap>(consumeOptions: ConsumeOptions<M>): Promise<Consumer> {
      if (isClosed) throw new AppError('SERVICE_UNAVAILABLE', 'The event bus is closed');
      const retry = consumeOptions.retry ?? DEFAULT_RETRY_POLICY;
      assertRetryPolicy(retry);
      const handlers = consumeOptions.handlers as ConsumerHandlers;
      if (!Object.values(handlers).some((handler) => handler !== undefined)) {
        throw new TypeError(`consumer group ${consumeOptions.group} has no handlers`);
      }
      consuming ??= new BrokerConnection(connectionOptions('consume'));
      const consumer = new GroupConsumer({
        group: consumeOptions.group,
        queues: groupQueues(consumeOptions.group, retry.maxAttempts > 1 ? retry.delaysMs : []),
        handlers,
        prefetch: consumeOptions.prefetch ?? 32,
        retry,
        deliveryLimit: consumeOptions.deliveryLimit ?? 20,
        lagPollMs: consumeOptions.lagPollMs ?? 5000,
        confirmTimeoutMs: publishTimeoutMs,
        operationTimeoutMs,
        exchange,
        connection: consuming,
        validate,
        metrics,
        logger: options.logger,
      });
      consumers.add(consumer);
      const startTimeoutMs = consumeOptions.startTimeoutMs ?? 30_000;
      try {
        await withDeadline(
          consuming.add(consumer),
          startTimeoutMs,
          `consumer ${consumer.group} start`,
        );
      } catch (error) {
        consumers.delete(consumer);
        await consumer.close(0);
        throw new AppError('SERVICE_UNAVAILABLE', `Could not start consuming ${consumer.group}`, {
          cause: error,
        });
      }
      return {
        group: consumer.group,
        queues: consumer.queues,
        async close(timeoutMs?: number) {
          consumers.delete(consumer);
          await consumer.close(timeoutMs);
        },
      };
    },

    get isReady() {
      return publishing.isReady && (consuming === undefined || consuming.isReady);
    },

    async close(timeoutMs = 10_000) {
      if (isClosed) return;
      isClosed = true;
      await Promise.all([...consumers].map((consumer) => consumer.close(timeoutMs)));
      consumers.clear();
      await publisher.drain(Math.min(timeoutMs, publishTimeoutMs));
      await Promise.all([
        publishing.close(operationTimeoutMs),
        consuming?.close(operationTimeoutMs),
      ]);
      metrics.dispose();
    },
  };
}

type ConsumerHandlers = ConstructorParameters<typeof GroupConsumer>[0]['handlers'];
