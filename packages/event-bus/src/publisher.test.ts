import { context, trace, TraceFlags } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelemetry, type Telemetry } from '@bazaar/telemetry';
import type { BusEvent } from './event';
import { CLOUDEVENTS_CONTENT_TYPE, publishProperties, traceHeaders } from './publisher';

const event: BusEvent = {
  specversion: '1.0',
  id: 'e1',
  type: 'order.placed.v1',
  source: '/orders',
  data: {},
};
const ACTIVE = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED };
const inActiveSpan = <T>(work: () => T): T =>
  context.with(trace.setSpanContext(context.active(), ACTIVE), work);

let telemetry: Telemetry;
beforeAll(() => {
  telemetry = startTelemetry({ serviceName: 'publisher-test' });
});
afterAll(() => telemetry.shutdown());

describe('traceHeaders', () => {
  it('sends the active trace context when nothing else carries one', () => {
    expect(inActiveSpan(() => traceHeaders({ event }))).toEqual({
      traceparent: `00-${ACTIVE.traceId}-${ACTIVE.spanId}-01`,
    });
  });

  it('prefers the envelope’s traceparent extension over the active context', () => {
    const traced = { ...event, traceparent: '00-1111-2222-01', tracestate: 'k=v' } as BusEvent;
    expect(inActiveSpan(() => traceHeaders({ event: traced }))).toEqual({
      traceparent: '00-1111-2222-01',
      tracestate: 'k=v',
    });
  });

  it('prefers the headers stored with an outbox row over both', () => {
    const traced = { ...event, traceparent: '00-1111-2222-01' } as BusEvent;
    expect(
      inActiveSpan(() =>
        traceHeaders({ event: traced, headers: { traceparent: 'stored', x: 'y' } }),
      ),
    ).toEqual({ traceparent: 'stored', x: 'y' });
  });
});

describe('publishProperties', () => {
  it('marks the message persistent, names it by event id and type, and stamps seconds', () => {
    expect(publishProperties(event, { traceparent: 'tp' }, 1_700_000_000_999)).toEqual({
      persistent: true,
      contentType: CLOUDEVENTS_CONTENT_TYPE,
      messageId: 'e1',
      type: 'order.placed.v1',
      timestamp: 1_700_000_000,
      headers: { traceparent: 'tp' },
    });
  });
});
