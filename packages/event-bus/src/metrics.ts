import {
  metrics,
  type Attributes,
  type Counter,
  type Histogram,
  type ObservableResult,
} from '@opentelemetry/api';
import { DURATION_BUCKETS_SECONDS } from '@bazaar/telemetry';

/** The instrumentation scope every instrument of this package reports under. */
export const METER_NAME = '@bazaar/event-bus';

/**
 * The package's instruments, created through the global meter (so `startTelemetry` must run first).
 * Names follow the OpenTelemetry messaging conventions where one exists; the Prometheus names
 * (`/metrics`) are in the README.
 */
export interface BusMetrics {
  /** Messages handed to the broker. */
  readonly sent: Counter;
  /** Messages the broker confirmed (publisher confirm ack). */
  readonly confirmed: Counter;
  /** Publishes that failed: nack, deadline, lost connection, invalid event. */
  readonly publishFailed: Counter;
  /** Deliveries settled by a consumer, by outcome: `ack`, `retry`, `dead_letter`. */
  readonly consumed: Counter;
  /** Deliveries that failed and were sent to a delay queue. */
  readonly retried: Counter;
  /** Deliveries sent to the DLQ, by reason. */
  readonly deadLettered: Counter;
  /** How long a handler ran. */
  readonly processDuration: Histogram;
  /** Registers a source of consumer lag for the `messaging.consumer.lag` gauge; returns its remover. */
  observeLag(source: () => readonly LagSample[]): () => void;
  /** Unregisters the gauge's callback (the bus closed). */
  dispose(): void;
}

/** Ready messages waiting in one consumer group's work queue, as last polled. */
export interface LagSample {
  readonly group: string;
  readonly messages: number;
}

/** The instruments, bound to the global meter provider current at the call. */
export function createBusMetrics(): BusMetrics {
  const meter = metrics.getMeter(METER_NAME);
  const message = { unit: '{message}' };
  const lagSources = new Set<() => readonly LagSample[]>();
  const lag = meter.createObservableGauge('messaging.consumer.lag', {
    ...message,
    description: 'Ready messages in the consumer group’s work queue (polled every few seconds)',
  });
  const observeAll = (result: ObservableResult<Attributes>) => {
    for (const source of lagSources) {
      for (const sample of source()) {
        result.observe(sample.messages, { 'messaging.consumer.group.name': sample.group });
      }
    }
  };
  lag.addCallback(observeAll);
  return {
    sent: meter.createCounter('messaging.client.sent.messages', {
      ...message,
      description: 'Messages published to RabbitMQ',
    }),
    confirmed: meter.createCounter('messaging.client.confirmed.messages', {
      ...message,
      description: 'Published messages RabbitMQ confirmed',
    }),
    publishFailed: meter.createCounter('messaging.client.publish.failures', {
      ...message,
      description: 'Publishes that failed (nack, deadline, connection lost, invalid)',
    }),
    consumed: meter.createCounter('messaging.client.consumed.messages', {
      ...message,
      description: 'Deliveries settled by consumers, by outcome',
    }),
    retried: meter.createCounter('messaging.client.retried.messages', {
      ...message,
      description: 'Failed deliveries sent to a delay queue for another attempt',
    }),
    deadLettered: meter.createCounter('messaging.client.dead_lettered.messages', {
      ...message,
      description: 'Deliveries sent to a dead-letter queue, by reason',
    }),
    processDuration: meter.createHistogram('messaging.process.duration', {
      unit: 's',
      description: 'Duration of event handlers',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_SECONDS },
    }),
    observeLag(source) {
      lagSources.add(source);
      return () => lagSources.delete(source);
    },
    dispose() {
      lag.removeCallback(observeAll);
      lagSources.clear();
    },
  };
}
