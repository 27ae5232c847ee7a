import { diag } from '@opentelemetry/api';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { DataPointType, MetricReader } from '@opentelemetry/sdk-metrics';
import type { MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** The content type of the Prometheus text exposition format, version 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Histogram bucket boundaries for durations in seconds, from the OpenTelemetry HTTP semantic conventions.
 * The SDK's default boundaries (0 … 10000) suit milliseconds, so pass these as advice:
 * `meter.createHistogram('x.duration', { unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS_SECONDS } })`.
 */
// Frozen, but typed mutable because the API's advice type takes `number[]`.
export const DURATION_BUCKETS_SECONDS = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
]) as number[];

/**
 * A metric reader that only collects when asked: Prometheus scrapes `/metrics`, and the service renders
 * what the SDK holds at that moment. Nothing is pushed and nothing is buffered.
 */
export class PullMetricReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

// UCUM units (what OpenTelemetry instruments declare) to the unit words Prometheus names end with.
// https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/#metric-metadata-1
const UNIT_WORDS: Readonly<Record<string, string>> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  m: 'meters',
  '%': 'percent',
};

const PER_UNIT_WORDS: Readonly<Record<string, string>> = {
  s: 'second',
  min: 'minute',
  h: 'hour',
  d: 'day',
};

/**
 * The Prometheus unit suffix for an OpenTelemetry unit, or `undefined` when the name gets none.
 * Annotations in braces (`{request}`) carry no unit; `1` on a gauge is a ratio.
 */
export function prometheusUnitSuffix(unit: string, isGauge: boolean): string | undefined {
  const bare = unit.replace(/\{[^}]*\}/g, '').trim();
  if (bare === '') return undefined;
  if (bare === '1') return isGauge ? 'ratio' : undefined;
  const [numerator = '', denominator] = bare.split('/', 2);
  const parts: string[] = [];
  if (numerator !== '' && numerator !== '1') parts.push(UNIT_WORDS[numerator] ?? numerator);
  if (denominator !== undefined && denominator !== '') {
    parts.push('per', PER_UNIT_WORDS[denominator] ?? UNIT_WORDS[denominator] ?? denominator);
  }
  const suffix = parts.join('_').replace(/[^a-zA-Z0-9_]/g, '_');
  return suffix === '' ? undefined : suffix;
}

/** The metric name with its unit appended the way Prometheus expects, unless already there. */
function nameWithUnit(metric: MetricData): string {
  const isGauge =
    metric.dataPointType === DataPointType.GAUGE ||
    (metric.dataPointType === DataPointType.SUM && !metric.isMonotonic);
  const suffix = prometheusUnitSuffix(metric.descriptor.unit, isGauge);
  const name = metric.descriptor.name;
  if (suffix === undefined) return name;
  const normalized = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return normalized.endsWith(`_${suffix}`) || normalized.endsWith(`_${suffix}_total`)
    ? name
    : `${name}_${suffix}`;
}

const serializer = new PrometheusSerializer(undefined, false);

/**
 * Collects the reader's metrics and renders them in the Prometheus text format.
 * The upstream serializer turns dots into underscores and adds `_total` to counters; it does not add the
 * unit, so that is done here first (`http.client.request.duration` in `s` →
 * `http_client_request_duration_seconds`).
 */
export async function renderPrometheus(reader: MetricReader): Promise<string> {
  const { resourceMetrics, errors } = await reader.collect();
  for (const error of errors) diag.error('metric collection failed', error);
  const named: ResourceMetrics = {
    resource: resourceMetrics.resource,
    scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
      ...scope,
      metrics: scope.metrics.map((metric) => ({
        ...metric,
        descriptor: { ...metric.descriptor, name: nameWithUnit(metric) },
      })),
    })),
  };
  return serializer.serialize(named);
}
