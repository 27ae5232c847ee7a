import { hostname } from 'node:os';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';
import { REDACTED, redactSecretKeys } from './redaction';
import { scrubJsonLine } from './sensitive-text';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The service name, written as `service` on every line (same word as `OTEL_SERVICE_NAME`). */
  readonly service: string;
  /** The minimum level written. Default `info`. */
  readonly level?: LevelWithSilent;
  /** Which instance of the service, written as `instance`. Default `<hostname>:<pid>`. */
  readonly instanceId?: string;
  /** Where lines go. Default: standard output. */
  readonly destination?: DestinationStream;
  /**
   * pino `redact` paths for values that are sensitive only at one place (`order.shipping.street`);
   * secret-named keys (`secretKeys`) are redacted everywhere without being listed.
   */
  readonly redactPaths?: readonly string[];
  /**
   * A second destination every line also goes to, after redaction, e.g. the Elasticsearch shipper
   * (`createElasticsearchShipper`). Its `write` must not block.
   */
  readonly shipTo?: DestinationStream;
}

/** The logger type every package and service passes around. */
export type { Logger };

/** The ids of the active OpenTelemetry span, in the field names the log pipeline indexes. */
function activeTraceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

// Errors are serialized after `formatters.log` ran, so their own fields are redacted here.
function serializeError(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error);
  return serialized === error ? error : redactSecretKeys({ ...serialized });
}

/**
 * A pino logger writing one JSON object per line with `level` (label), ISO `time`, `service`,
 * `instance`, and the `trace_id`/`span_id` of the active span. Secret-named keys are redacted at any
 * depth (in the log object, bindings and errors), and card numbers, bearer tokens and JWTs are scrubbed from every string value
 * (messages, nested fields, error messages and stacks) before a line is written.
 *
 * @example
 * ```ts
 * const logger = createLogger({ service: 'payments', level: config.LOG_LEVEL });
 * logger.info({ orderId }, 'authorizing payment');
 * logger.error({ err }, 'authorization failed');
 * ```
 */
export function createLogger(options: LoggerOptions): Logger {
  const { service, level = 'info', instanceId, destination, redactPaths = [], shipTo } = options;
  const primary = destination ?? pino.destination({ dest: 1, sync: true });
  // multistream filters by each stream's level; the logger's own level already did.
  const output =
    shipTo === undefined
      ? primary
      : pino.multistream([
          { stream: primary, level: 'trace' },
          { stream: shipTo, level: 'trace' },
        ]);
  return pino(
    {
      level,
      base: { service, instance: instanceId ?? `${hostname()}:${process.pid}` },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactSecretKeys(bindings),
        log: (object) => redactSecretKeys(object),
      },
      serializers: { err: serializeError, error: serializeError },
      mixin: activeTraceFields,
      ...(redactPaths.length === 0
        ? {}
        : { redact: { paths: [...redactPaths], censor: REDACTED } }),
      hooks: { streamWrite: scrubJsonLine },
    },
    output,
  );
}
