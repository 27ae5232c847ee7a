import type { FastifyBaseLogger } from 'fastify';

type Bindings = Record<string, unknown>;
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1];
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * A request's logger that becomes a real pino child only when something is logged through it.
 * fastify builds a child logger (the request id bound) for every request; creating it was the
 * largest single cost of a request proxied by the gateway, although most requests never log
 * through it (the access-log line is written by the base logger, with the request id as a field).
 * Methods live on the prototype, so a request pays for one small object.
 */
class LazyChildLogger {
  #real: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildOptions,
  ) {}

  real(): FastifyBaseLogger {
    this.#real ??= this.parent.child(this.bindings, this.options);
    return this.#real;
  }

  get level(): string {
    return this.#real?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.real().child(bindings, options);
  }
}

for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as Level[]) {
  Object.defineProperty(LazyChildLogger.prototype, level, {
    value(this: LazyChildLogger, ...args: unknown[]) {
      // Below the level nothing is written, so nothing needs the child.
      if (level !== 'silent' && !isEnabled(this, level)) return;
      const real = this.real();
      Reflect.apply(real[level], real, args);
    },
  });
}

const levelValues: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

function isEnabled(logger: LazyChildLogger, level: Level): boolean {
  return (levelValues[level] ?? 0) >= (levelValues[logger.level] ?? 0);
}

/** fastify's `childLoggerFactory`: request loggers that cost nothing until they log. */
export function lazyChildLoggerFactory(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildOptions,
): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger;
}
