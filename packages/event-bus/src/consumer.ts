import type { ChannelModel, ConfirmChannel, ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Logger } from '@bazaar/logging';
import { extractContext } from '@bazaar/telemetry';
import { AckBatcher } from './ack-batcher';
import type { Attachment, BrokerConnection } from './broker-connection';
import { isDeadlineError, sleep, withDeadline } from './deadline';
import {
  describeIssues,
  envelopeTraceHeaders,
  eventIssues,
  type BusEvent,
  type EventMap,
  type EventValidator,
} from './event';
import {
  attemptOf,
  deadLetterHeaders,
  describeError,
  retryHeaders,
  textHeaders,
  type DeadLetterReason,
} from './message-headers';
import type { BusMetrics, LagSample } from './metrics';
import { decideAfterFailure, type RetryPolicy } from './retry-policy';
import { declareGroup, formatDelay, type GroupQueues } from './topology';

/** What a handler learns about the delivery besides the event. */
export interface DeliveryContext {
  /** The consumer group handling it. */
  readonly group: string;
  /** 1 for the first delivery, 2 for the first retry, … */
  readonly attempt: number;
  /** The broker delivered this message before (to a consumer that did not acknowledge it). */
  readonly redelivered: boolean;
}

/**
 * Handles one event. Resolving acknowledges the message; throwing sends it to a delay queue for
 * another attempt, or to the DLQ after the last one. Handlers must be idempotent (see `handleOnce`):
 * delivery is at least once.
 */
export type EventHandler<E extends BusEvent = BusEvent> = (
  event: E,
  delivery: DeliveryContext,
) => Promise<void>;

/** The handlers of a consumer group, by event type. */
export type EventHandlers<M extends EventMap> = {
  readonly [K in keyof M & string]?: EventHandler<M[K]>;
};

/** A running consumer group member. */
export interface Consumer {
  readonly group: string;
  /** The group's queue names. */
  readonly queues: GroupQueues;
  /** Stops taking messages, waits for handlers in flight (at most `timeoutMs`), closes the channel. */
  close(timeoutMs?: number): Promise<void>;
}

export interface ConsumerSettings {
  readonly group: string;
  readonly queues: GroupQueues;
  readonly handlers: Readonly<Record<string, EventHandler<never> | undefined>>;
  readonly prefetch: number;
  readonly retry: RetryPolicy;
  readonly deliveryLimit: number;
  readonly lagPollMs: number;
  readonly confirmTimeoutMs: number;
  readonly operationTimeoutMs: number;
  readonly exchange: string;
  readonly connection: BrokerConnection;
  readonly validate: EventValidator;
  readonly metrics: BusMetrics;
  readonly logger: Logger;
}

interface Outcome {
  readonly action: 'ack' | 'retry' | 'dead_letter';
}

/**
 * One consumer on its own confirm channel: manual acknowledgements, a prefetch window, and failed
 * deliveries moved to a delay queue or the DLQ — acknowledged only after that copy is confirmed, so a
 * failed message is never lost and never acknowledged unhandled.
 */
export class GroupConsumer implements Attachment, Consumer {
  readonly #settings: ConsumerSettings;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stopLag: () => void;
  #channel: ConfirmChannel | undefined;
  #acks: AckBatcher | undefined;
  #consumerTag: string | undefined;
  #isClosing = false;
  #lag: number | undefined;
  #lagTimer: NodeJS.Timeout | undefined;

  constructor(settings: ConsumerSettings) {
    this.#settings = settings;
    this.#stopLag = settings.metrics.observeLag(() => this.#lagSamples());
  }

  get group(): string {
    return this.#settings.group;
  }

  get queues(): GroupQueues {
    return this.#settings.queues;
  }

  async attach(model: ChannelModel): Promise<void> {
    const { queues, handlers, deliveryLimit, exchange, prefetch, logger, group } = this.#settings;
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: unknown) => {
      logger.warn({ err: error, group }, 'RabbitMQ closed a consumer channel');
    });
    channel.on('close', () => {
      setImmediate(() => {
        if (this.#channel === channel && !this.#isClosing) {
          this.#settings.connection.reset(new Error(`consumer channel of ${group} closed`));
        }
      });
    });
    const types = Object.keys(handlers).filter((type) => handlers[type] !== undefined);
    await declareGroup(channel, queues, types, deliveryLimit, exchange);
    await channel.prefetch(prefetch);
    this.#channel = channel;
    this.#acks = new AckBatcher(channel);
    const { consumerTag } = await channel.consume(
      queues.work,
      (message) => this.#onMessage(channel, message),
      { noAck: false },
    );
    this.#consumerTag = consumerTag;
    this.#startLagPolling();
  }

  detach(): void {
    // Deliveries in flight on the lost channel cannot be acknowledged any more: the broker redelivers.
    this.#acks?.close();
    this.#acks = undefined;
    this.#channel = undefined;
    this.#consumerTag = undefined;
  }

  async close(timeoutMs = 10_000): Promise<void> {
    if (this.#isClosing) return;
    this.#isClosing = true;
    clearInterval(this.#lagTimer);
    this.#stopLag();
    const channel = this.#channel;
    const tag = this.#consumerTag;
    const { operationTimeoutMs, connection, logger, group } = this.#settings;
    try {
      if (channel !== undefined && tag !== undefined) {
        await withDeadline(channel.cancel(tag), operationTimeoutMs, 'RabbitMQ consumer cancel');
      }
      await withDeadline(
        Promise.allSettled([...this.#inFlight]),
        timeoutMs,
        `handlers of ${group} in flight`,
      );
      this.#acks?.flush();
      if (channel !== undefined) {
        await withDeadline(channel.close(), operationTimeoutMs, 'RabbitMQ channel close');
      }
    } catch (error) {
      // Unacknowledged deliveries return to the queue when the connection closes.
      logger.warn({ err: error, group }, 'consumer did not close cleanly');
    } finally {
      this.#channel = undefined;
      connection.remove(this);
    }
  }

  #onMessage(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted): start over on a new connection.
      if (!this.#isClosing) {
        this.#settings.connection.reset(new Error(`queue ${this.#settings.queues.work} went away`));
      }
      return;
    }
    this.#acks?.delivered(message.fields.deliveryTag);
    const handling = this.#handle(channel, message)
      .catch(async (error: unknown) => {
        this.#settings.logger.error(
          { err: error, group: this.#settings.group, messageId: message.properties.messageId },
          'could not settle a delivery; returning it to the queue',
        );
        await this.#requeueLater(channel, message);
      })
      .finally(() => this.#inFlight.delete(handling));
    this.#inFlight.add(handling);
  }

  async #handle(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const { group, validate, handlers, metrics, retry } = this.#settings;
    const headers = message.properties.headers;
    const attempt = attemptOf(headers);
    let event: unknown;
    try {
      event = JSON.parse(message.content.toString('utf8'));
    } catch (error) {
      return this.#deadLetter(
        channel,
        message,
        attempt,
        'invalid',
        `body is not JSON: ${describeError(error)}`,
      );
    }
    const issues = eventIssues(event, validate);
    if (issues.length > 0) {
      return this.#deadLetter(
        channel,
        message,
        attempt,
        'invalid',
        `invalid event: ${describeIssues(issues)}`,
      );
    }
    const valid = event as BusEvent;
    const handler = handlers[valid.type] as EventHandler | undefined;
    if (handler === undefined) {
      return this.#deadLetter(
        channel,
        message,
        attempt,
        'no-handler',
        `${group} has no handler for ${valid.type}`,
      );
    }
    const delivery: DeliveryContext = { group, attempt, redelivered: message.fields.redelivered };
    const failure = await this.#runHandler(handler, valid, delivery, headers);
    if (failure === undefined) {
      this.#settle(channel, message, { action: 'ack' });
      return undefined;
    }
    const decision = decideAfterFailure(attempt, retry);
    if (decision.action === 'dead-letter') {
      return this.#deadLetter(channel, message, attempt, 'handler-failed', failure);
    }
    const retryQueue =
      this.#settings.queues.retries.find((tier) => tier.delayMs === decision.delayMs)?.name ??
      `${group}.retry.${formatDelay(decision.delayMs)}`;
    await this.#forward(
      channel,
      message,
      retryQueue,
      retryHeaders(headers, message.fields.routingKey, decision.nextAttempt, failure),
    );
    metrics.retried.add(1, { 'messaging.consumer.group.name': group });
    this.#settings.logger.warn(
      {
        err: failure,
        group,
        eventId: valid.id,
        type: valid.type,
        attempt,
        retryInMs: decision.delayMs,
      },
      'event handler failed; retrying later',
    );
    this.#settle(channel, message, { action: 'retry' });
    return undefined;
  }

  /** Runs the handler in a consumer span that continues the producer's trace; returns its error. */
  async #runHandler(
    handler: EventHandler,
    event: BusEvent,
    delivery: DeliveryContext,
    headers: MessagePropertyHeaders | undefined,
  ): Promise<unknown> {
    const { group, queues, metrics } = this.#settings;
    const carrier = textHeaders(headers);
    const parent = extractContext(
      carrier['traceparent'] === undefined
        ? { ...carrier, ...envelopeTraceHeaders(event) }
        : carrier,
    );
    const span = trace.getTracer('@bazaar/event-bus').startSpan(
      `process ${event.type}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': queues.work,
          'messaging.consumer.group.name': group,
          'messaging.message.id': event.id,
          'messaging.rabbitmq.destination.routing_key': event.type,
          'bazaar.event.attempt': delivery.attempt,
        },
      },
      parent,
    );
    const startedAt = performance.now();
    let failure: unknown;
    try {
      await context.with(trace.setSpan(parent, span), () => handler(event, delivery));
    } catch (error) {
      failure = error ?? new Error('handler threw undefined');
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
    } finally {
      span.end();
      metrics.processDuration.record((performance.now() - startedAt) / 1000, {
        'messaging.consumer.group.name': group,
        'messaging.rabbitmq.destination.routing_key': event.type,
        ...(failure === undefined ? {} : { 'error.type': errorType(failure) }),
      });
    }
    return failure;
  }

  async #deadLetter(
    channel: ConfirmChannel,
    message: ConsumeMessage,
    attempt: number,
    reason: DeadLetterReason,
    error: unknown,
  ): Promise<void> {
    const { group, queues, metrics, logger } = this.#settings;
    await this.#forward(
      channel,
      message,
      queues.deadLetter,
      deadLetterHeaders(
        message.properties.headers,
        message.fields.routingKey,
        attempt,
        reason,
        error,
      ),
    );
    metrics.deadLettered.add(1, {
      'messaging.consumer.group.name': group,
      'bazaar.dead_letter.reason': reason,
    });
    logger.error(
      { err: error, group, messageId: message.properties.messageId, attempt, reason },
      'event dead-lettered',
    );
    this.#settle(channel, message, { action: 'dead_letter' });
  }

  /**
   * Publishes a copy of the message to a queue through the default exchange and waits for its confirm.
   * Throws when the copy is not confirmed: the original then stays unacknowledged (redelivered later).
   */
  async #forward(
    channel: ConfirmChannel,
    message: ConsumeMessage,
    queue: string,
    headers: MessagePropertyHeaders,
  ): Promise<void> {
    const { confirmTimeoutMs, connection } = this.#settings;
    const { properties } = message;
    const confirmed = new Promise<void>((resolve, reject) => {
      channel.publish(
        '',
        queue,
        message.content,
        {
          persistent: true,
          headers,
          ...(properties.contentType === undefined
            ? {}
            : { contentType: properties.contentType as string }),
          ...(properties.messageId === undefined
            ? {}
            : { messageId: properties.messageId as string }),
          ...(properties.type === undefined ? {} : { type: properties.type as string }),
          ...(properties.timestamp === undefined
            ? {}
            : { timestamp: properties.timestamp as number }),
        },
        (error: unknown) =>
          error === null
            ? resolve()
            : reject(error instanceof Error ? error : new Error('publish nacked')),
      );
    });
    try {
      await withDeadline(confirmed, confirmTimeoutMs, `RabbitMQ confirm of the copy to ${queue}`);
    } catch (error) {
      if (isDeadlineError(error)) connection.reset(error);
      throw error;
    }
  }

  /**
   * Settling failed (e.g. a copy was not confirmed): give the original back after a pause, so a broker
   * in trouble is not spun on. Never acknowledged.
   */
  async #requeueLater(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    await sleep(1000);
    const acks = this.#acks;
    if (this.#channel !== channel || acks === undefined) return;
    try {
      channel.nack(message, false, true);
      acks.settledWithoutAck(message.fields.deliveryTag);
    } catch {
      // The channel closed meanwhile: the broker redelivers on its own.
    }
  }

  #settle(channel: ConfirmChannel, message: ConsumeMessage, outcome: Outcome): void {
    const { group, metrics } = this.#settings;
    // A delivery tag is only valid on the channel that delivered it; after a reconnect, the broker
    // redelivers instead (and the handler's idempotence absorbs the repeat).
    const acks = this.#acks;
    if (this.#channel !== channel || acks === undefined) return;
    acks.ack(message.fields.deliveryTag);
    metrics.consumed.add(1, {
      'messaging.consumer.group.name': group,
      'bazaar.outcome': outcome.action,
    });
  }

  #startLagPolling(): void {
    clearInterval(this.#lagTimer);
    const poll = async () => {
      const channel = this.#channel;
      if (channel === undefined || this.#isClosing) return;
      try {
        const { messageCount } = await withDeadline(
          channel.checkQueue(this.#settings.queues.work),
          this.#settings.operationTimeoutMs,
          'RabbitMQ queue check',
        );
        this.#lag = messageCount;
      } catch {
        this.#lag = undefined;
      }
    };
    void poll();
    this.#lagTimer = setInterval(() => void poll(), this.#settings.lagPollMs);
    this.#lagTimer.unref();
  }

  #lagSamples(): LagSample[] {
    return this.#lag === undefined ? [] : [{ group: this.#settings.group, messages: this.#lag }];
  }
}

function errorType(error: unknown): string {
  if (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string'
  ) {
    return error.code;
  }
  return error instanceof Error ? error.name : typeof error;
}
