import { randomBytes, randomUUID } from 'node:crypto';
import { call, eventually, registerAndLogin, testStack, type Reply } from '@bazaar/testing';
import { beforeAll, describe, expect, it } from 'vitest';

// Acceptance (issue #10): one order placed through the gateway with a known `traceparent` becomes
// ONE trace in Jaeger with spans from gateway, orders, payments, psp-sandbox, notifications and
// analytics; that trace id is found in the logs in Elasticsearch; the order is counted in
// Prometheus. Needs the whole system (every service on main) and the observability parts.

const stack = testStack();
const gateway = stack.url('gateway');

interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly processID: string;
  readonly references: readonly { refType: string; traceID: string; spanID: string }[];
}
interface JaegerTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerSpan[];
  readonly processes: Record<string, { serviceName: string }>;
}

async function prometheusValue(query: string): Promise<number> {
  const url = new URL('/api/v1/query', stack.url('prometheus'));
  url.searchParams.set('query', query);
  const body = (await (await fetch(url)).json()) as {
    status: string;
    data: { result: { value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`${query} failed`);
  return body.data.result.reduce((sum, series) => sum + Number(series.value[1]), 0);
}

const ORDER_COUNTERS = {
  // service-kit's RED histogram: every service has it, no service code needed.
  accepted:
    'http_server_request_duration_seconds_count{job="bazaar", service="orders", http_request_method="POST", http_response_status_code="202"}',
  // The business counter of @bazaar/telemetry's createOrderMetrics (orders service).
  placed: 'orders_placed_total{job="bazaar"}',
} as const;

describe('one order, observed end to end', () => {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  let orderId = '';
  const before = { accepted: 0, placed: 0 };

  beforeAll(async () => {
    before.accepted = await prometheusValue(`sum(${ORDER_COUNTERS.accepted})`);
    before.placed = await prometheusValue(`sum(${ORDER_COUNTERS.placed})`);
    const { tokens } = await registerAndLogin(gateway);
    const products = await call<{ items: { id: string; stock: number }[] }>(
      gateway,
      'GET',
      '/v1/products',
    );
    expect(products.status, JSON.stringify(products.body)).toBe(200);
    const product = products.body.items.find((item) => item.stock > 0);
    if (product === undefined) throw new Error('the catalog has no product in stock');
    const placed: Reply<{ id: string; status: string }> = await call(
      gateway,
      'POST',
      '/v1/orders',
      {
        token: tokens.accessToken,
        headers: {
          'idempotency-key': randomUUID(),
          traceparent: `00-${traceId}-${parentSpanId}-01`,
        },
        body: { items: [{ productId: product.id, quantity: 1 }], payment: { token: 'tok_visa' } },
      },
    );
    expect(placed.status, JSON.stringify(placed.body)).toBe(202);
    orderId = placed.body.id;
    await eventually(
      async () => {
        const order = await call<{ status: string }>(gateway, 'GET', `/v1/orders/${orderId}`, {
          token: tokens.accessToken,
        });
        return order.body.status === 'CONFIRMED' ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `order ${orderId} CONFIRMED` },
    );
  }, 120_000);

  it('is one trace in Jaeger, from the gateway through orders, payments, psp-sandbox, notifications and analytics', async () => {
    const wanted = ['gateway', 'orders', 'payments', 'psp-sandbox', 'notifications', 'analytics'];
    const found = await eventually(
      async () => {
        const response = await fetch(`${stack.url('jaeger')}/api/traces/${traceId}`);
        if (!response.ok) return undefined;
        const trace = ((await response.json()) as { data: JaegerTrace[] }).data[0];
        if (trace === undefined) return undefined;
        const services = new Set(
          trace.spans.map((span) => trace.processes[span.processID]?.serviceName),
        );
        return wanted.every((name) => services.has(name)) ? trace : undefined;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 1000,
        what: `trace ${traceId} with spans of ${wanted.join(', ')}`,
      },
    );
    expect(found.traceID).toBe(traceId);
    // Every span has its parent in the trace, except the gateway's server span, whose parent is
    // the caller's span from our traceparent: nothing started a trace of its own along the way.
    const ids = new Set(found.spans.map((span) => span.spanID));
    const orphans = found.spans.filter(
      (span) => !span.references.some((ref) => ref.refType === 'CHILD_OF' && ids.has(ref.spanID)),
    );
    expect(
      orphans.map(
        (span) => `${found.processes[span.processID]?.serviceName} ${span.operationName}`,
      ),
    ).toHaveLength(1);
    expect(found.processes[orphans[0]?.processID ?? '']?.serviceName).toBe('gateway');
    expect(orphans[0]?.references.map((ref) => ref.spanID)).toContain(parentSpanId);
  });

  it('has its trace id in the logs in Elasticsearch, from more than one service', async () => {
    const hits = await eventually(
      async () => {
        const response = await fetch(`${stack.url('elasticsearch')}/bazaar-logs-*/_search`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            size: 100,
            query: { term: { trace_id: traceId } },
            sort: [{ '@timestamp': 'asc' }],
          }),
        });
        const body = (await response.json()) as {
          hits: { hits: { _source: { service: string; trace_id: string; msg: string } }[] };
        };
        const services = new Set(body.hits.hits.map((hit) => hit._source.service));
        return services.has('gateway') && services.has('orders') ? body.hits.hits : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1000, what: `log lines with trace_id ${traceId}` },
    );
    for (const hit of hits) expect(hit._source.trace_id).toBe(traceId);
  });

  it('is counted in Prometheus: the orders service answered 202 once more', async () => {
    await eventually(
      async () =>
        (await prometheusValue(`sum(${ORDER_COUNTERS.accepted})`)) >= before.accepted + 1
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 1000, what: 'the POST /v1/orders 202 counted' },
    );
  });

  it('is counted in the business counter orders_placed_total', async () => {
    await eventually(
      async () =>
        (await prometheusValue(`sum(${ORDER_COUNTERS.placed})`)) >= before.placed + 1
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 1000, what: 'orders_placed_total counted the order' },
    );
  });
});
