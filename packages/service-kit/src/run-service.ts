import type { AddressInfo } from 'node:net';
import type { ServiceConfig } from '@bazaar/config';
import type { Logger } from '@bazaar/logging';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import { markShuttingDown } from './app';

/**
 * One resource to release at shutdown: a consumer to stop, a pool to close, a registration to
 * withdraw. Closers run one at a time, in the reverse order of the list (so list them in the order
 * they were started), each bounded by its own deadline.
 */
export interface Closer {
  /** For logs: `rabbitmq consumer`, `postgres pool`, `registry lease`. */
  readonly name: string;
  close(): Promise<void> | void;
  /** How long this closer may take. Default {@link DEFAULT_CLOSER_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** What {@link runService} runs and how. */
export interface RunServiceOptions {
  readonly app: FastifyInstance;
  /** `HOST`/`PORT` to listen on, and `SHUTDOWN_TIMEOUT_MS` to drain in-flight requests. */
  readonly config: Readonly<Pick<ServiceConfig, 'HOST' | 'PORT' | 'SHUTDOWN_TIMEOUT_MS'>>;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'shutdown'>;
  /** Resources to release after the HTTP drain, in start order (they are closed in reverse). */
  readonly onShutdown?: readonly Closer[];
  /** Overrides `config.HOST`/`config.PORT`. */
  readonly listen?: { readonly host: string; readonly port: number };
  /** Signals that start a graceful shutdown. Default `SIGTERM` and `SIGINT`; `[]` for none. */
  readonly signals?: readonly NodeJS.Signals[];
  /** Log uncaught exceptions and unhandled rejections as fatal and exit 1. Default true. */
  readonly handleProcessErrors?: boolean;
  /** How the process ends. Default `process.exit`. */
  readonly exit?: (code: number) => void;
}

/** A service that is listening. */
export interface RunningService {
  /** `http://host:port` as bound (the real port when `PORT=0`). */
  readonly url: string;
  readonly port: number;
  /**
   * Runs the graceful shutdown (as a signal would) and resolves with the exit code once `exit` has
   * been called. Calling it again returns the same promise.
   */
  shutdown(reason: string): Promise<number>;
}

/** The deadline of a closer that does not set its own. */
export const DEFAULT_CLOSER_TIMEOUT_MS = 5000;
// After the drain deadline, connections are destroyed; fastify's onClose hooks then get this long.
const FORCED_CLOSE_GRACE_MS = 1000;
// Telemetry bounds its own flush; this covers a bug there, not a slow collector.
const TELEMETRY_SHUTDOWN_MARGIN_MS = 5000;

class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

async function withinDeadline<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`${what} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Listens, then on SIGTERM/SIGINT shuts down gracefully:
 *
 * 1. marks the app not ready (`/readyz` → 503) and stops accepting connections; idle keep-alive
 *    connections close, and every response from now on carries `Connection: close`;
 * 2. waits for in-flight requests, at most `SHUTDOWN_TIMEOUT_MS`, then destroys what is left;
 * 3. runs the `onShutdown` closers in reverse order, each within its own deadline;
 * 4. flushes telemetry, and exits 0 — or 1 if the drain deadline passed or a closer failed.
 *
 * A second signal during the shutdown exits 1 at once.
 *
 * @example
 * ```ts
 * await runService({ app, config, logger, telemetry, onShutdown: [
 *   { name: 'postgres pool', close: () => pool.end() },
 *   { name: 'order.placed consumer', close: () => consumer.stop() },
 * ] });
 * ```
 */
export async function runService(options: RunServiceOptions): Promise<RunningService> {
  const {
    app,
    config,
    logger,
    telemetry,
    onShutdown = [],
    listen = { host: config.HOST, port: config.PORT },
    signals = ['SIGTERM', 'SIGINT'],
    handleProcessErrors = true,
    exit = (code: number) => process.exit(code),
  } = options;
  const drainTimeoutMs = config.SHUTDOWN_TIMEOUT_MS;

  await app.listen({ host: listen.host, port: listen.port });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`;
  logger.info({ url }, 'listening');

  let shutdown: Promise<number> | undefined;

  async function drainAndExit(reason: string): Promise<number> {
    logger.info({ reason, drainTimeoutMs }, 'shutting down');
    const watchdogMs =
      drainTimeoutMs +
      FORCED_CLOSE_GRACE_MS +
      onShutdown.reduce((sum, closer) => sum + (closer.timeoutMs ?? DEFAULT_CLOSER_TIMEOUT_MS), 0) +
      TELEMETRY_SHUTDOWN_MARGIN_MS;
    // The last resort if a step hangs despite its deadline; unref'd so it never keeps us alive.
    const watchdog = setTimeout(() => {
      logger.fatal({ watchdogMs }, 'shutdown hung; exiting');
      exit(1);
    }, watchdogMs);
    watchdog.unref();

    let exitCode = 0;
    markShuttingDown(app);
    const closed = app.close();
    try {
      await withinDeadline(closed, drainTimeoutMs, 'HTTP drain');
      logger.info('in-flight requests finished');
    } catch (error) {
      exitCode = 1;
      logger.error(
        { err: error },
        'in-flight requests did not finish in time; closing connections',
      );
      app.server.closeAllConnections();
      await withinDeadline(closed, FORCED_CLOSE_GRACE_MS, 'HTTP close').catch((closeError) =>
        logger.error({ err: closeError }, 'HTTP server did not close'),
      );
    }

    for (const closer of [...onShutdown].reverse()) {
      const timeoutMs = closer.timeoutMs ?? DEFAULT_CLOSER_TIMEOUT_MS;
      try {
        await withinDeadline(
          Promise.resolve().then(() => closer.close()),
          timeoutMs,
          `closer "${closer.name}"`,
        );
        logger.info({ closer: closer.name }, 'closed');
      } catch (error) {
        exitCode = 1;
        logger.error({ err: error, closer: closer.name }, 'closer failed');
      }
    }

    await telemetry.shutdown();
    logger.info({ exitCode }, 'shutdown complete');
    clearTimeout(watchdog);
    for (const signal of signals) process.off(signal, onSignal);
    if (handleProcessErrors) {
      process.off('uncaughtException', onProcessError);
      process.off('unhandledRejection', onProcessError);
    }
    exit(exitCode);
    return exitCode;
  }

  function startShutdown(reason: string): Promise<number> {
    shutdown ??= drainAndExit(reason);
    return shutdown;
  }

  function onSignal(signal: NodeJS.Signals): void {
    if (shutdown !== undefined) {
      logger.warn({ signal }, 'second signal during shutdown; exiting now');
      exit(1);
      return;
    }
    void startShutdown(signal);
  }

  // The process state is unknown after an uncaught error: log it as JSON and exit at once, leaving
  // the restart to the supervisor.
  function onProcessError(error: unknown): void {
    logger.fatal({ err: error }, 'uncaught error; exiting');
    exit(1);
  }

  for (const signal of signals) process.on(signal, onSignal);
  if (handleProcessErrors) {
    process.on('uncaughtException', onProcessError);
    process.on('unhandledRejection', onProcessError);
  }

  return { url, port, shutdown: startShutdown };
}
