import { describe, expect, expectTypeOf, it } from 'vitest';
import { eventSchemaFiles } from './contract-files.fixture';
import { isEventType, routingKeyOf } from './event-type';
import {
  eventTypeNames,
  type BazaarEvent,
  type EventTypes,
  type OrderPlacedV1Data,
} from './generated/event-types';

describe('eventTypeNames', () => {
  it('lists the type of every event schema, sorted and without duplicates', () => {
    expect(eventTypeNames).toEqual(eventSchemaFiles.map((file) => file.type));
    expect([...new Set(eventTypeNames)].sort()).toEqual(eventTypeNames);
  });

  it('follows <aggregate>.<past-verb>.v<N>', () => {
    for (const type of eventTypeNames) expect(type).toMatch(/^[a-z]+\.[a-z]+\.v[1-9][0-9]*$/);
  });
});

describe('isEventType', () => {
  it('knows every event type and nothing else', () => {
    for (const type of eventTypeNames) expect(isEventType(type)).toBe(true);
    for (const value of ['order.placed.v2', 'order.placed', 'ORDER.PLACED.V1', '', 42, null]) {
      expect(isEventType(value)).toBe(false);
    }
    expect(isEventType('toString')).toBe(false);
  });
});

describe('routingKeyOf', () => {
  it('is the event type', () => {
    expect(routingKeyOf('payment.authorized.v1')).toBe('payment.authorized.v1');
  });
});

describe('the generated types', () => {
  it('let an event map such as the event bus takes accept EventTypes', () => {
    interface MinimalEnvelope {
      readonly specversion: '1.0';
      readonly id: string;
      readonly type: string;
      readonly data: unknown;
    }
    expectTypeOf<EventTypes>().toExtend<Readonly<Record<string, MinimalEnvelope>>>();
  });

  it('narrow BazaarEvent on type', () => {
    const narrow = (event: BazaarEvent) =>
      event.type === 'order.placed.v1' ? event.data : undefined;
    expectTypeOf(narrow).returns.toEqualTypeOf<OrderPlacedV1Data | undefined>();
  });
});
