import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import type { Logger } from '@bazaar/logging';
import type { Attachment, BrokerConnection } from './broker-connection';
import { connectionLostError } from './broker-connection';
import { deadlineError } from './deadline';
import {
  envelopeIssues,
  eventIssues,
  invalidEventError,
  type BusEvent,
  type EventValidator,
} from './event';
import type { BusMetrics } from './metrics';
import { declareExchange } from './topology';
import { traceHeaders } from './trace-headers';

export { traceHeaders };

/** One event to publish, with headers to send along. */
export interface OutgoingEvent {
  readonly event: BusEvent;
  /**
   * Extra message headers, e.g. the W3C `traceparent` captured when the event was written to an outbox.
   * Without a `traceparent` here, the envelope's `traceparent` extension or the active trace context is sent.
   */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * An event already serialized — and validated when it was written, like an outbox row — sent as is
 * without parsing it again. Only its id and type (which route it) are checked.
 */
export interface EncodedEvent {
  readonly encoded: {
    readonly id: string;
    readonly type: string;
    /** The CloudEvents envelope as JSON. */
    readonly body: string;
  };
  /** As for {@link OutgoingEvent}; without a `traceparent`, the active trace context is sent. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** What `publishBatch` takes. */
export type OutgoingMessage = OutgoingEvent | EncodedEvent;

/** The content type of a CloudEvent in structured mode (the whole envelope is the body). */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

/** The AMQP properties an event is published with. */
export function publishProperties(
  event: Pick<BusEvent, 'id' | 'type'>,
  headers: Readonly<Record<string, string>>,
  now: number = Date.now(),
): Options.Publish {
  return {
    persistent: true,
    contentType: CLOUDEVENTS_CONTENT_TYPE,
    messageId: event.id,
    type: event.type,
    timestamp: Math.floor(now / 1000),
    headers: { ...headers },
  };
}

interface PublisherOptions {
  readonly connection: BrokerConnection;
  readonly exchange: string;
  readonly validate: EventValidator;
  readonly metrics: BusMetrics;
  readonly logger: Logger;
}

/** A publish waiting for its confirm; settles once, by the broker, a deadline or a lost connection. */
class PendingConfirm {
  readonly promise: Promise<void>;
  #settle: (error: Error | undefined) => void = () => undefined;
  #isSettled = false;

  constructor(onSettled: (pending: PendingConfirm) => void) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => {
        if (this.#isSettled) return;
        this.#isSettled = true;
        onSettled(this);
        if (error === undefined) resolve();
        else reject(error);
      };
    });
  }

  get isSettled(): boolean {
    return this.#isSettled;
  }

  settle(error?: Error): void {
    this.#settle(error);
  }
}

/**
 * Publishes on a confirm channel. Confirms are asynchronous: a batch is written in one go and its
 * confirms are awaited together (the broker acknowledges many messages per frame), never one awaited
 * confirm per message. Every batch has a deadline; when it passes, the connection is presumed stuck
 * and reset, and the unconfirmed messages fail (the caller keeps them, e.g. in its outbox).
 */
export class Publisher implements Attachment {
  readonly #options: PublisherOptions;
  readonly #inFlight = new Set<PendingConfirm>();
  #channel: ConfirmChannel | undefined;
  #isClosing = false;

  constructor(options: PublisherOptions) {
    this.#options = options;
  }

  async attach(model: ChannelModel): Promise<void> {
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: unknown) => {
      this.#options.logger.warn({ err: error }, 'RabbitMQ closed the publishing channel');
    });
    channel.on('close', () => {
      // When the connection closes, its channels close first; give `detach` the chance to run.
      setImmediate(() => {
        if (this.#channel === channel && !this.#isClosing) {
          this.#options.connection.reset(new Error('publishing channel closed'));
        }
      });
    });
    await declareExchange(channel, this.#options.exchange);
    this.#channel = channel;
  }

  detach(reason: Error): void {
    this.#channel = undefined;
    for (const pending of [...this.#inFlight]) pending.settle(reason);
  }

  /**
   * Validates and publishes each message, then waits for all confirms, at most `timeoutMs` in total
   * (including the wait for a connection). Never rejects: each message's outcome is in the result, at
   * its index. Invalid events are not sent; encoded ones were validated when written, only their id and
   * type are checked here.
   */
  async publishBatch(
    messages: readonly OutgoingMessage[],
    timeoutMs: number,
  ): Promise<PromiseSettledResult<void>[]> {
    const { connection, exchange, validate, metrics } = this.#options;
    const startedAt = performance.now();
    const remainingMs = () => Math.max(0, timeoutMs - (performance.now() - startedAt));
    const outcomes: (Promise<void> | Error)[] = messages.map((message) => {
      const issues =
        'encoded' in message
          ? envelopeIssues({ specversion: '1.0', ...message.encoded })
          : eventIssues(message.event, validate);
      if (issues.length === 0) return Promise.resolve();
      return invalidEventError('encoded' in message ? message.encoded : message.event, issues);
    });
    const sendable = messages.flatMap((message, index) =>
      outcomes[index] instanceof Error ? [] : [{ message, index }],
    );
    if (sendable.length > 0) {
      try {
        await connection.whenReady(remainingMs());
      } catch (error) {
        for (const { index } of sendable) outcomes[index] = asError(error);
      }
    }
    const channel = this.#channel;
    const batch: PendingConfirm[] = [];
    let failure: Error | undefined;
    for (const { message, index } of sendable) {
      if (outcomes[index] instanceof Error) continue;
      if (failure === undefined && (channel === undefined || this.#channel !== channel)) {
        failure = connectionLostError(new Error('no open publishing channel'));
      }
      if (failure !== undefined || channel === undefined) {
        outcomes[index] = failure ?? connectionLostError(undefined);
        continue;
      }
      const pending = new PendingConfirm((settled) => this.#inFlight.delete(settled));
      this.#inFlight.add(pending);
      batch.push(pending);
      outcomes[index] = pending.promise;
      const isEncoded = 'encoded' in message;
      const event = isEncoded ? message.encoded : message.event;
      const headers = isEncoded
        ? traceHeaders({ headers: message.headers })
        : traceHeaders({ event: message.event, headers: message.headers });
      try {
        const hasRoom = channel.publish(
          exchange,
          event.type,
          Buffer.from(isEncoded ? message.encoded.body : JSON.stringify(message.event)),
          publishProperties(event, headers),
          (error: unknown) => pending.settle(error === null ? undefined : asError(error)),
        );
        metrics.sent.add(1, { 'messaging.destination.name': exchange });
        // Backpressure: amqplib buffers without bound; wait until the socket drains before writing more.
        if (!hasRoom) await drained(channel, remainingMs());
      } catch (error) {
        failure = asError(error);
        pending.settle(failure);
      }
    }
    if (batch.some((pending) => !pending.isSettled)) {
      await this.#awaitConfirms(batch, remainingMs(), timeoutMs);
    }
    const results = await Promise.allSettled(
      outcomes.map((outcome) => (outcome instanceof Error ? Promise.reject(outcome) : outcome)),
    );
    let confirmed = 0;
    for (const result of results) if (result.status === 'fulfilled') confirmed += 1;
    const attributes = { 'messaging.destination.name': exchange };
    if (confirmed > 0) metrics.confirmed.add(confirmed, attributes);
    if (confirmed < results.length)
      metrics.publishFailed.add(results.length - confirmed, attributes);
    return results;
  }

  /** Resolves once no publish waits for a confirm (or after `timeoutMs`). */
  async drain(timeoutMs: number): Promise<void> {
    this.#isClosing = true;
    const waiting = [...this.#inFlight].map((pending) => pending.promise.catch(() => undefined));
    await this.#awaitConfirms([...this.#inFlight], timeoutMs, timeoutMs, waiting);
  }

  async #awaitConfirms(
    batch: readonly PendingConfirm[],
    remainingMs: number,
    timeoutMs: number,
    waiting: readonly Promise<unknown>[] = batch.map((pending) =>
      pending.promise.catch(() => undefined),
    ),
  ): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), remainingMs);
    });
    const isExpired = await Promise.race([Promise.all(waiting).then(() => false), expired]);
    clearTimeout(timer);
    if (!isExpired) return;
    const error = deadlineError('RabbitMQ publish confirm', timeoutMs);
    const unsettled = batch.filter((pending) => !pending.isSettled);
    for (const pending of unsettled) pending.settle(error);
    if (unsettled.length > 0) this.#options.connection.reset(error);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Resolves when the channel's write buffer drained; rejects at the deadline or when it closes. */
function drained(channel: ConfirmChannel, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error) => {
      clearTimeout(timer);
      channel.off('drain', onDrain);
      channel.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = () => finish();
    const onClose = () => finish(connectionLostError(new Error('channel closed while draining')));
    const timer = setTimeout(
      () => finish(deadlineError('RabbitMQ publish (socket drain)', timeoutMs)),
      timeoutMs,
    );
    channel.on('drain', onDrain);
    channel.on('close', onClose);
  });
}
