import { afterEach, describe, expect, it } from 'vitest';
import {
  createIngestCounter,
  createNotificationCounter,
  createOrderMetrics,
  createPaymentMetrics,
  observeDeadLetterDepth,
  observeOutbox,
} from './domain-metrics';
import { startTelemetry, type Telemetry } from './telemetry';

// The Prometheus names below are what observability/prometheus/rules and the dashboards query.
describe('domain metric helpers', () => {
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown();
  });

  it('render under the names the rules, alerts and dashboards use', async () => {
    telemetry = startTelemetry({ serviceName: 'orders', serviceInstanceId: 'orders-1' });
    const orders = createOrderMetrics(telemetry.meter);
    orders.placed();
    orders.placed();
    orders.confirmed({ amount: 2599, currency: 'USD' }, new Date(Date.now() - 1500));
    orders.cancelled('PAYMENT_DECLINED', new Date());
    orders.observeBacklog(() => ({ pending: 4, overdue: 1 }));
    createPaymentMetrics(telemetry.meter).record('authorize', 'succeeded', {
      amount: 2599,
      currency: 'USD',
    });
    observeOutbox(telemetry.meter, () => ({ pending: 3, oldestAgeSeconds: 12.5 }));
    observeDeadLetterDepth(telemetry.meter, () => [
      { group: 'payments.order-placed', messages: 2 },
    ]);
    createIngestCounter(telemetry.meter)('order.placed.v1');
    createNotificationCounter(telemetry.meter)('email', 'sent');

    const { body } = await telemetry.renderMetrics();
    const value = (series: RegExp) => Number(series.exec(body)?.[1]);
    expect(value(/^orders_placed_total\{[^}]*\} (\S+)$/m)).toBe(2);
    expect(value(/^orders_revenue_minor_units_total\{[^}]*currency="USD"[^}]*\} (\S+)$/m)).toBe(
      2599,
    );
    expect(value(/^orders_saga_completed_total\{[^}]*outcome="confirmed"[^}]*\} (\S+)$/m)).toBe(1);
    expect(
      value(/^orders_saga_completed_total\{[^}]*reason="PAYMENT_DECLINED"[^}]*\} (\S+)$/m),
    ).toBe(1);
    expect(body).toMatch(/^orders_saga_duration_seconds_bucket\{/m);
    expect(value(/^orders_saga_pending\{[^}]*\} (\S+)$/m)).toBe(4);
    expect(value(/^orders_saga_overdue\{[^}]*\} (\S+)$/m)).toBe(1);
    expect(value(/^payments_operations_total\{[^}]*outcome="succeeded"[^}]*\} (\S+)$/m)).toBe(1);
    expect(value(/^payments_amount_minor_units_total\{[^}]*\} (\S+)$/m)).toBe(2599);
    expect(value(/^outbox_pending\{[^}]*\} (\S+)$/m)).toBe(3);
    expect(value(/^outbox_oldest_age_seconds\{[^}]*\} (\S+)$/m)).toBe(12.5);
    expect(
      value(
        /^messaging_consumer_dlq_depth\{[^}]*messaging_consumer_group_name="payments.order-placed"[^}]*\} (\S+)$/m,
      ),
    ).toBe(2);
    expect(value(/^analytics_events_ingested_total\{[^}]*\} (\S+)$/m)).toBe(1);
    expect(value(/^notifications_sent_total\{[^}]*channel="email"[^}]*\} (\S+)$/m)).toBe(1);
  });
});
