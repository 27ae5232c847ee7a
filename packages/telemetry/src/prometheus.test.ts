import { metrics } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { prometheusUnitSuffix } from './prometheus';
import { startTelemetry } from './telemetry';
import type { Telemetry } from './telemetry';

const started: Telemetry[] = [];
function start(serviceName: string): Telemetry {
  const telemetry = startTelemetry({ serviceName, serviceInstanceId: `${serviceName}-1` });
  started.push(telemetry);
  return telemetry;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((telemetry) => telemetry.shutdown()));
});

/** The sample lines of one metric family, without comments. */
function samples(body: string, family: string): string[] {
  return body.split('\n').filter((line) => line.startsWith(family) && !line.startsWith('#'));
}

describe('renderMetrics', () => {
  it('serves the Prometheus text format content type', async () => {
    const { contentType } = await start('orders').renderMetrics();
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('renders a counter with _total and a histogram with its unit, buckets, sum and count', async () => {
    const telemetry = start('orders');
    const placed = telemetry.meter.createCounter('orders.placed', { unit: '{order}' });
    placed.add(2, { currency: 'USD' });
    placed.add(1, { currency: 'USD' });
    const duration = telemetry.meter.createHistogram('http.server.request.duration', {
      unit: 's',
      advice: { explicitBucketBoundaries: [0.1, 1] },
    });
    duration.record(0.05, { 'http.request.method': 'GET' });
    duration.record(0.5, { 'http.request.method': 'GET' });

    const { body } = await telemetry.renderMetrics();

    expect(body).toContain('# TYPE orders_placed_total counter');
    expect(samples(body, 'orders_placed_total')).toEqual([
      expect.stringMatching(/^orders_placed_total\{currency="USD",otel_scope_name="orders"\} 3$/),
    ]);
    expect(body).toContain('# TYPE http_server_request_duration_seconds histogram');
    const histogram = samples(body, 'http_server_request_duration_seconds');
    expect(histogram).toContainEqual(
      expect.stringMatching(/^http_server_request_duration_seconds_count\{.*\} 2$/),
    );
    expect(histogram).toContainEqual(
      expect.stringMatching(/^http_server_request_duration_seconds_sum\{.*\} 0\.55$/),
    );
    expect(histogram).toContainEqual(
      expect.stringMatching(/^http_server_request_duration_seconds_bucket\{.*le="0\.1"\} 1$/),
    );
    expect(histogram).toContainEqual(
      expect.stringMatching(/^http_server_request_duration_seconds_bucket\{.*le="\+Inf"\} 2$/),
    );
  });

  it('includes instruments created through the global meter by shared packages', async () => {
    const telemetry = start('payments');
    metrics.getMeter('@bazaar/http-client').createCounter('http.client.retries').add(4);
    const { body } = await telemetry.renderMetrics();
    expect(samples(body, 'http_client_retries_total')).toEqual([
      'http_client_retries_total{otel_scope_name="@bazaar/http-client"} 4',
    ]);
  });

  it('describes the service in target_info', async () => {
    const { body } = await start('psp-sandbox').renderMetrics();
    const [targetInfo] = samples(body, 'target_info');
    expect(targetInfo).toContain('service_name="psp-sandbox"');
    expect(targetInfo).toContain('service_instance_id="psp-sandbox-1"');
  });

  it('includes Node runtime gauges under their Prometheus-conventional names', async () => {
    const { body } = await start('orders').renderMetrics();
    for (const family of [
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_heap_size_total_bytes',
      'nodejs_external_memory_bytes',
      'nodejs_eventloop_utilization_ratio',
      'nodejs_eventloop_delay_p99_seconds',
      'nodejs_eventloop_delay_max_seconds',
    ]) {
      expect(samples(body, `${family}{`), family).toHaveLength(1);
    }
    const [rss] = samples(body, 'process_resident_memory_bytes{');
    expect(Number(rss?.split(' ').at(-1))).toBeGreaterThan(1024 * 1024);
  });

  it('keeps independent setups apart', async () => {
    const first = start('users');
    const second = start('orders');
    first.meter.createCounter('users.registered').add(1);
    expect((await first.renderMetrics()).body).toContain('users_registered_total');
    expect((await second.renderMetrics()).body).not.toContain('users_registered');
  });
});

describe('prometheusUnitSuffix', () => {
  it.each([
    ['s', false, 'seconds'],
    ['ms', false, 'milliseconds'],
    ['By', true, 'bytes'],
    ['1', true, 'ratio'],
    ['1', false, undefined],
    ['{request}', false, undefined],
    ['', true, undefined],
    ['By/s', true, 'bytes_per_second'],
    ['{request}/s', true, 'per_second'],
    ['widgets', false, 'widgets'],
  ] as const)('%s (gauge: %s) → %s', (unit, isGauge, expected) => {
    expect(prometheusUnitSuffix(unit, isGauge)).toBe(expected);
  });
});
