import { describe, expect, it } from 'vitest';
import { eventSchemaFiles } from './contract-files.fixture';
import { isEventType, routingKeyOf } from './event-type';
import { eventTypeNames } from './generated/event-types';

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
