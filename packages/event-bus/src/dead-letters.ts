import { connect, type ChannelModel, type ConfirmChannel, type GetMessage } from 'amqplib';
import { AppError } from '@bazaar/errors';
import { withDeadline } from './deadline';
import { HEADER, attemptOf, headerText, replayHeaders } from './message-headers';
import { groupQueues } from './topology';

/** A message in a consumer group's DLQ, as `list` shows it. */
export interface DeadLetter {
  /** The event id (AMQP `message-id`), when the message had one. */
  readonly eventId: string | undefined;
  readonly type: string | undefined;
  /** `handler-failed`, `invalid`, `no-handler`, or the broker's (`delivery_limit`). */
  readonly reason: string | undefined;
  readonly error: string | undefined;
  readonly attempts: number;
  readonly failedAt: string | undefined;
  /** The body, cut to 2000 characters. */
  readonly body: string;
}

/** What `replay`/`drop` select: every message, or the ones with this event id. */
export interface DeadLetterSelection {
  readonly eventId?: string;
}

/** Inspects and repairs consumer groups' DLQs (used by `npm run dlq`). */
export interface DeadLetterAdmin {
  /** Reads up to `limit` messages without removing any (they are returned to the DLQ). */
  list(group: string, options?: { readonly limit?: number }): Promise<DeadLetter[]>;
  /**
   * Moves the selected messages back to the group's work queue, starting over at attempt 1, each
   * removed from the DLQ only after its copy is confirmed. Returns how many moved.
   */
  replay(group: string, selection?: DeadLetterSelection): Promise<number>;
  /** Deletes the selected messages. Returns how many. */
  drop(group: string, selection?: DeadLetterSelection): Promise<number>;
  close(): Promise<void>;
}

const BODY_PREVIEW = 2000;

function describe(message: GetMessage): DeadLetter {
  const { headers, messageId, type } = message.properties as {
    headers?: Record<string, unknown>;
    messageId?: string;
    type?: string;
  };
  const text = message.content.toString('utf8');
  let envelope: { id?: unknown; type?: unknown } = {};
  try {
    envelope = JSON.parse(text) as typeof envelope;
  } catch {
    // An unparseable body is one reason messages end here; show it as text.
  }
  const deliveries = Number(headers?.['x-delivery-count']);
  return {
    eventId: messageId ?? (typeof envelope.id === 'string' ? envelope.id : undefined),
    type: type ?? (typeof envelope.type === 'string' ? envelope.type : undefined),
    reason: headerText(headers, HEADER.reason) ?? headerText(headers, 'x-first-death-reason'),
    error: headerText(headers, HEADER.error),
    attempts:
      headers?.[HEADER.attempt] === undefined && deliveries > 0 ? deliveries : attemptOf(headers),
    failedAt: headerText(headers, HEADER.failedAt),
    body: text.length > BODY_PREVIEW ? `${text.slice(0, BODY_PREVIEW)}…` : text,
  };
}

/**
 * Connects to the broker for DLQ administration. Every call has a deadline; messages read and not
 * settled go back to the DLQ when the channel closes, so an interrupted command loses nothing.
 */
export async function openDeadLetterAdmin(
  url: string,
  timeoutMs = 10_000,
): Promise<DeadLetterAdmin> {
  const model: ChannelModel = await withDeadline(
    connect(url, { timeout: timeoutMs, clientProperties: { connection_name: 'bazaar.dlq' } }),
    timeoutMs,
    'RabbitMQ connect',
  );
  model.on('error', () => undefined);
  const within = <T>(work: Promise<T>, what: string) => withDeadline(work, timeoutMs, what);

  /** Opens a channel and reads every message the DLQ held at that moment, leaving them unacked. */
  /** Polls a queue's depth until it holds at least `depth` messages (bounded by a deadline). */
  async function waitForDepth(queue: string, depth: number): Promise<void> {
    if (depth === 0) return;
    const channel = await within(model.createConfirmChannel(), 'RabbitMQ channel open');
    channel.on('error', () => undefined);
    try {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        const { messageCount } = await within(channel.checkQueue(queue), 'RabbitMQ queue check');
        if (messageCount >= depth) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      await closeChannel(channel);
    }
  }

  async function readAll(
    group: string,
    limit: number,
  ): Promise<{
    channel: ConfirmChannel;
    messages: GetMessage[];
    queues: ReturnType<typeof groupQueues>;
  }> {
    const queues = groupQueues(group, []);
    const channel = await within(model.createConfirmChannel(), 'RabbitMQ channel open');
    channel.on('error', () => undefined);
    let count: number;
    try {
      ({ messageCount: count } = await within(
        channel.checkQueue(queues.deadLetter),
        'RabbitMQ queue check',
      ));
    } catch (error) {
      throw new AppError('NOT_FOUND', `No dead-letter queue ${queues.deadLetter}`, {
        cause: error,
      });
    }
    const messages: GetMessage[] = [];
    // Bounded by the depth seen at the start: messages returned to the queue are not read twice.
    while (messages.length < Math.min(count, limit)) {
      const message = await within(
        channel.get(queues.deadLetter, { noAck: false }),
        'RabbitMQ get',
      );
      if (message === false) break;
      messages.push(message);
    }
    return { channel, messages, queues };
  }

  async function closeChannel(channel: ConfirmChannel): Promise<void> {
    await within(channel.close(), 'RabbitMQ channel close').catch(() => undefined);
  }

  const matches = (message: GetMessage, selection: DeadLetterSelection) =>
    selection.eventId === undefined || describe(message).eventId === selection.eventId;

  return {
    async list(group, { limit = 100 } = {}) {
      const { channel, messages, queues } = await readAll(group, limit);
      try {
        return messages.map(describe);
      } finally {
        // Closing the channel returns every unacknowledged message to the DLQ; a quorum queue
        // applies those returns through its log, a moment later. Wait for them, so that what
        // runs next (another list, a replay) sees every dead letter again.
        await closeChannel(channel);
        await waitForDepth(queues.deadLetter, messages.length);
      }
    },

    async replay(group, selection = {}) {
      const { channel, messages, queues } = await readAll(group, Number.POSITIVE_INFINITY);
      let moved = 0;
      try {
        for (const message of messages) {
          if (!matches(message, selection)) continue;
          const { properties } = message;
          await within(
            new Promise<void>((resolve, reject) => {
              channel.publish(
                '',
                queues.work,
                message.content,
                {
                  persistent: true,
                  headers: replayHeaders(properties.headers),
                  ...(typeof properties.messageId === 'string'
                    ? { messageId: properties.messageId }
                    : {}),
                  ...(typeof properties.type === 'string' ? { type: properties.type } : {}),
                  ...(typeof properties.contentType === 'string'
                    ? { contentType: properties.contentType }
                    : {}),
                  ...(typeof properties.timestamp === 'number'
                    ? { timestamp: properties.timestamp }
                    : {}),
                },
                (error: unknown) =>
                  error === null
                    ? resolve()
                    : reject(error instanceof Error ? error : new Error('publish nacked')),
              );
            }),
            'RabbitMQ publish confirm',
          );
          channel.ack(message);
          moved += 1;
        }
        return moved;
      } finally {
        await closeChannel(channel);
      }
    },

    async drop(group, selection = {}) {
      const { channel, messages } = await readAll(group, Number.POSITIVE_INFINITY);
      let dropped = 0;
      try {
        for (const message of messages) {
          if (!matches(message, selection)) continue;
          channel.ack(message);
          dropped += 1;
        }
        // Acks are asynchronous; a round trip guarantees the broker has processed them before returning.
        await within(channel.checkQueue(groupQueues(group, []).deadLetter), 'RabbitMQ queue check');
        return dropped;
      } finally {
        await closeChannel(channel);
      }
    },

    async close() {
      await within(model.close(), 'RabbitMQ connection close').catch(() => undefined);
    },
  };
}
