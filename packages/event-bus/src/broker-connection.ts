import { connect, type ChannelModel } from 'amqplib';
import { AppError } from '@bazaar/errors';
import type { Logger } from '@bazaar/logging';
import { sleep, withDeadline } from './deadline';

/** Something that lives on a connection and is built again on every new one: channels, consumers. */
export interface Attachment {
  /** Creates its channels and topology on a freshly opened connection. Runs under a deadline. */
  attach(model: ChannelModel): Promise<void>;
  /** The connection it was attached to is gone: fail in-flight work, forget the channels. */
  detach(reason: Error): void;
}

/** How a {@link BrokerConnection} connects and reconnects. */
export interface BrokerConnectionOptions {
  readonly url: string;
  readonly logger: Logger;
  /** Shown by the broker (`rabbitmqctl list_connections client_properties`). */
  readonly connectionName: string;
  /** AMQP heartbeat: a silent broker is detected after about two intervals. */
  readonly heartbeatSeconds: number;
  /** Deadline of the TCP connect plus AMQP handshake. */
  readonly connectTimeoutMs: number;
  /** Deadline of each broker call made while attaching (channel open, declarations). */
  readonly operationTimeoutMs: number;
  readonly reconnectBaseDelayMs: number;
  readonly reconnectMaxDelayMs: number;
}

/**
 * The wait before reconnect attempt `failures` (1 after the first failure): "full jitter", uniformly
 * random in `[0, min(max, base · 2^(failures−1)))`, so a fleet of clients does not reconnect in step.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export function reconnectDelayMs(
  failures: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  if (failures <= 0 || baseDelayMs <= 0) return 0;
  const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures - 1, 30));
  return Math.floor(cap * random());
}

/** The amqplib URL with the heartbeat interval set, unless the URL sets one itself. */
export function withHeartbeat(url: string, heartbeatSeconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) {
    parsed.searchParams.set('heartbeat', String(heartbeatSeconds));
  }
  return parsed.toString();
}

/** The error in-flight work fails with when its connection is lost. */
export function connectionLostError(cause: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 'The connection to RabbitMQ was lost', { cause });
}

interface Registration {
  /** The connection generation it is attached to (0: none yet). */
  generation: number;
  readonly firstAttach: Deferred;
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

// Promise.withResolvers arrived in Node 22.
function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // The caller of `add` may not wait; a rejection then must not become an unhandled one.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * One AMQP connection that reopens itself. A loop connects (under a deadline), attaches every
 * registered {@link Attachment}, waits until the connection closes, detaches them and reconnects after
 * a jittered, growing delay. `reset` tears the socket down at once: after a missed deadline the
 * connection is presumed stuck (a paused broker never answers, and amqplib would wait forever).
 */
export class BrokerConnection {
  readonly #options: BrokerConnectionOptions;
  readonly #registrations = new Map<Attachment, Registration>();
  readonly #stop = new AbortController();
  #model: ChannelModel | undefined;
  #generation = 0;
  #isReady = false;
  #readyWaiters = new Set<() => void>();
  // Attaching is serialized so that a new attachment never races the loop's attach-all.
  #serial: Promise<void> = Promise.resolve();
  #loop: Promise<void> | undefined;

  constructor(options: BrokerConnectionOptions) {
    this.#options = options;
  }

  /** Starts connecting in the background (idempotent). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Whether the connection is open and every attachment attached. */
  get isReady(): boolean {
    return this.#isReady;
  }

  /** Resolves once the connection is ready; rejects with `SERVICE_UNAVAILABLE` after `timeoutMs`. */
  async whenReady(timeoutMs: number): Promise<void> {
    this.start();
    if (this.#isReady) return;
    let resolveReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      resolveReady = resolve;
      this.#readyWaiters.add(resolve);
    });
    try {
      await withDeadline(ready, timeoutMs, 'RabbitMQ connection');
    } catch (error) {
      throw new AppError('SERVICE_UNAVAILABLE', 'Not connected to RabbitMQ', { cause: error });
    } finally {
      this.#readyWaiters.delete(resolveReady);
    }
  }

  /**
   * Registers an attachment: attached now when connected, and on every later connection.
   * @returns a promise that resolves when it is attached for the first time
   */
  add(attachment: Attachment): Promise<void> {
    const registration: Registration = { generation: 0, firstAttach: deferred() };
    this.#registrations.set(attachment, registration);
    this.start();
    const model = this.#model;
    if (model !== undefined && this.#isReady) {
      void this.#exclusive(() =>
        this.#attach(model, this.#generation, attachment, registration),
      ).catch((error: unknown) => this.reset(error));
    }
    return registration.firstAttach.promise;
  }

  /** Forgets an attachment (it detaches itself). */
  remove(attachment: Attachment): void {
    const registration = this.#registrations.get(attachment);
    this.#registrations.delete(attachment);
    registration?.firstAttach.reject(
      new AppError('SERVICE_UNAVAILABLE', 'Closed before it was attached'),
    );
  }

  /**
   * Destroys the current connection's socket (no AMQP close handshake: the broker may be stuck), so the
   * loop reconnects. In-flight work of the attachments fails with a connection-lost error.
   */
  reset(reason: unknown): void {
    const model = this.#model;
    if (model === undefined) return;
    this.#options.logger.warn(
      { err: reason, connection: this.#options.connectionName },
      'resetting the RabbitMQ connection',
    );
    destroySocket(model, reason);
  }

  /**
   * Stops reconnecting and closes the connection: politely within `timeoutMs`, otherwise by destroying
   * its socket. Attachments should have closed their own work first.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    const model = this.#model;
    if (model !== undefined) {
      try {
        await withDeadline(model.close(), timeoutMs, 'RabbitMQ connection close');
      } catch {
        destroySocket(model, new Error('connection closed by client'));
      }
    }
    await this.#loop;
    for (const attachment of [...this.#registrations.keys()]) this.remove(attachment);
  }

  async #run(): Promise<void> {
    const { logger, connectionName } = this.#options;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      let model: ChannelModel | undefined;
      let lost: unknown = new Error('connection closed');
      try {
        model = await this.#connect();
        const closed = new Promise<unknown>((resolve) => {
          model?.once('close', resolve);
        });
        // Without an 'error' listener a socket error would crash the process; 'close' follows it.
        model.on('error', (error: unknown) => {
          lost = error;
        });
        model.on('blocked', (reason: unknown) => {
          logger.warn({ reason, connection: connectionName }, 'RabbitMQ blocked the connection');
        });
        this.#model = model;
        this.#generation += 1;
        const generation = this.#generation;
        await this.#exclusive(async () => {
          for (const [attachment, registration] of this.#registrations) {
            await this.#attach(model as ChannelModel, generation, attachment, registration);
          }
        });
        this.#isReady = true;
        if (failures > 0) logger.info({ connection: connectionName }, 'reconnected to RabbitMQ');
        failures = 0;
        for (const resolve of this.#readyWaiters) resolve();
        this.#readyWaiters.clear();
        const reason = await closed;
        lost = reason ?? lost;
        if (!this.#stop.signal.aborted) {
          logger.warn({ err: lost, connection: connectionName }, 'lost the RabbitMQ connection');
        }
      } catch (error) {
        lost = error;
        failures += 1;
        if (!this.#stop.signal.aborted) {
          logger.warn(
            { err: error, connection: connectionName, failures },
            'RabbitMQ connect failed',
          );
        }
        if (model !== undefined) destroySocket(model, error);
      } finally {
        this.#isReady = false;
        this.#model = undefined;
        const reason = connectionLostError(lost);
        for (const [attachment, registration] of this.#registrations) {
          if (registration.generation !== 0) attachment.detach(reason);
        }
      }
      if (this.#stop.signal.aborted) break;
      const delay = Math.max(
        reconnectDelayMs(
          Math.max(failures, 1),
          this.#options.reconnectBaseDelayMs,
          this.#options.reconnectMaxDelayMs,
        ),
        // Never spin: even a connection that closes right after opening waits a little.
        50,
      );
      await sleep(delay, this.#stop.signal);
    }
  }

  async #connect(): Promise<ChannelModel> {
    const { url, heartbeatSeconds, connectTimeoutMs, connectionName } = this.#options;
    const opening = connect(withHeartbeat(url, heartbeatSeconds), {
      // amqplib's own timeout covers the socket until the handshake completes.
      timeout: connectTimeoutMs,
      clientProperties: { connection_name: connectionName },
    });
    try {
      return await withDeadline(opening, connectTimeoutMs + 1000, 'RabbitMQ connect');
    } catch (error) {
      // A connection that opens after its deadline is of no use to anyone.
      opening.then(
        (late) => destroySocket(late, error),
        () => undefined,
      );
      throw error;
    }
  }

  async #attach(
    model: ChannelModel,
    generation: number,
    attachment: Attachment,
    registration: Registration,
  ): Promise<void> {
    if (registration.generation === generation || !this.#registrations.has(attachment)) return;
    await withDeadline(
      attachment.attach(model),
      this.#options.operationTimeoutMs,
      'RabbitMQ channel setup',
    );
    registration.generation = generation;
    registration.firstAttach.resolve();
  }

  #exclusive(work: () => Promise<void>): Promise<void> {
    const run = this.#serial.then(work);
    this.#serial = run.catch(() => undefined);
    return run;
  }
}

interface SocketHolder {
  readonly stream?: { destroy(error?: Error): void };
}

/**
 * Destroys the connection's socket. amqplib reacts to the socket error as to a dropped connection:
 * it fails every channel's pending calls and confirms, then emits `close`.
 */
function destroySocket(model: ChannelModel, reason: unknown): void {
  const { stream } = model.connection as unknown as SocketHolder;
  stream?.destroy(reason instanceof Error ? reason : new Error(String(reason)));
}
