import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventSchemaFiles, exampleOf } from './contract-files.fixture';
import { validateEvent, type EventValidationResult } from './event-validation';
import { eventValidators } from './generated/validators';

function issuesOf(result: EventValidationResult): readonly { path: string; message: string }[] {
  if (result.ok) throw new Error('expected the event to be invalid');
  return result.errors;
}

describe('the event schemas', () => {
  it.each(eventSchemaFiles.map((file) => [file.type, file] as const))(
    '%s has realistic examples that it accepts',
    (type, file) => {
      expect(file.schema.examples?.length ?? 0).toBeGreaterThan(0);
      for (const example of file.schema.examples ?? []) {
        const result = validateEvent(example);
        expect(result.ok ? [] : result.errors).toEqual([]);
        expect(result.ok && result.event.type).toBe(type);
      }
    },
  );

  it.each(eventSchemaFiles.map((file) => [file.type, file] as const))(
    '%s rejects data without any one of its required fields',
    (type, file) => {
      const required = file.schema.$defs[`${file.schema.title}Data`]?.required ?? [];
      expect(required.length).toBeGreaterThan(0);
      for (const field of required) {
        const event = exampleOf(type);
        delete event.data[field];
        expect(issuesOf(validateEvent(event))).toContainEqual({
          path: `/data/${field}`,
          message: 'is required',
        });
      }
    },
  );

  it.each(eventSchemaFiles.map((file) => [file.type] as const))(
    '%s rejects an extra property in data',
    (type) => {
      const event = exampleOf(type);
      event.data.cardNumber = '4242424242424242';
      expect(issuesOf(validateEvent(event))).toEqual([
        { path: '/data/cardNumber', message: 'is not allowed' },
      ]);
    },
  );

  it.each(eventSchemaFiles.map((file) => [file.type] as const))(
    '%s rejects another type in its own validator',
    (type) => {
      const other = eventSchemaFiles.find((file) => file.type !== type)?.type;
      const validate = eventValidators[type as keyof typeof eventValidators];
      expect(validate({ ...exampleOf(type), type: other })).toBe(false);
      expect(validate.errors).toContainEqual(
        expect.objectContaining({ instancePath: '/type', keyword: 'const' }),
      );
    },
  );

  it('every event type has a schema and every schema is a known event type', () => {
    expect(eventSchemaFiles.map((file) => file.type)).toEqual(Object.keys(eventValidators).sort());
  });
});

describe('validateEvent', () => {
  it('rejects a negative or fractional amount of money', () => {
    const negative = exampleOf('order.placed.v1');
    (negative.data.total as { amount: number }).amount = -1;
    expect(issuesOf(validateEvent(negative))).toEqual([
      { path: '/data/total/amount', message: 'must be >= 0' },
    ]);
    const fractional = exampleOf('payment.refunded.v1');
    (fractional.data.amount as { amount: number }).amount = 12.5;
    expect(issuesOf(validateEvent(fractional))).toEqual([
      { path: '/data/amount/amount', message: 'must be integer' },
    ]);
  });

  it('accepts any non-negative safe integer amount and refuses every negative one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (amount) => {
        const event = exampleOf('payment.authorized.v1');
        event.data.amount = { amount, currency: 'EUR' };
        return validateEvent(event).ok;
      }),
    );
    fc.assert(
      fc.property(fc.integer({ max: -1 }), (amount) => {
        const event = exampleOf('payment.authorized.v1');
        event.data.amount = { amount, currency: 'EUR' };
        return !validateEvent(event).ok;
      }),
    );
  });

  it('rejects a currency that is not three upper-case letters', () => {
    for (const currency of ['usd', 'US', 'USDT', '']) {
      const event = exampleOf('order.confirmed.v1');
      event.data.total = { amount: 100, currency };
      expect(issuesOf(validateEvent(event)).map((issue) => issue.path)).toEqual([
        '/data/total/currency',
      ]);
    }
  });

  it('accepts processor tokens and refuses anything that looks like card data', () => {
    for (const paymentToken of ['tok_visa', 'tok_chargeDeclined', 'tok_insufficientFunds']) {
      const event = exampleOf('order.placed.v1');
      event.data.paymentToken = paymentToken;
      expect(validateEvent(event).ok).toBe(true);
    }
    for (const paymentToken of [
      '4242424242424242',
      'tok_4242424242424242',
      'tok_visa_4000056655665556',
      '4242 4242 4242 4242',
      'tok_',
      `tok_${'a'.repeat(65)}`,
    ]) {
      const event = exampleOf('order.placed.v1');
      event.data.paymentToken = paymentToken;
      expect(issuesOf(validateEvent(event)).map((issue) => issue.path)).toContain(
        '/data/paymentToken',
      );
    }
  });

  it('rejects ids without their type prefix', () => {
    const event = exampleOf('payment.captured.v1');
    event.data.orderId = 'pay_01J9Z4B1C2D3E4F5G6H7J8K9M0';
    event.subject = 'ord_01J9Z4A7B8C9D0E1F2G3H4J5K6';
    expect(issuesOf(validateEvent(event)).map((issue) => issue.path)).toEqual([
      '/subject',
      '/data/orderId',
    ]);
  });

  it('rejects an event from a source other than its producer', () => {
    const event = exampleOf('payment.failed.v1');
    event.source = '/orders';
    expect(issuesOf(validateEvent(event))).toEqual([
      { path: '/source', message: 'must be "/payments"' },
    ]);
  });

  it('rejects unknown enum values with the allowed ones in the message', () => {
    const event = exampleOf('order.cancelled.v1');
    event.data.reason = 'CHANGED_MIND';
    expect(issuesOf(validateEvent(event))).toEqual([
      {
        path: '/data/reason',
        message:
          'must be one of "PAYMENT_DECLINED", "PAYMENT_TIMEOUT", "PAYMENT_UNAVAILABLE", "USER_CANCELLED"',
      },
    ]);
  });

  it('bounds arrays: an order has 1 to 100 lines', () => {
    const empty = exampleOf('order.placed.v1');
    empty.data.items = [];
    expect(issuesOf(validateEvent(empty)).map((issue) => issue.path)).toEqual(['/data/items']);
    const huge = exampleOf('order.placed.v1');
    const [line] = huge.data.items as unknown[];
    huge.data.items = Array.from({ length: 101 }, () => line);
    expect(issuesOf(validateEvent(huge)).map((issue) => issue.path)).toEqual(['/data/items']);
  });

  it('rejects an invalid e-mail address', () => {
    const event = exampleOf('user.registered.v1');
    event.data.email = 'not-an-email';
    expect(issuesOf(validateEvent(event)).map((issue) => issue.path)).toEqual(['/data/email']);
  });

  describe('the CloudEvents envelope', () => {
    it('requires every mandatory attribute', () => {
      for (const attribute of [
        'specversion',
        'id',
        'source',
        'time',
        'datacontenttype',
        'subject',
        'data',
      ]) {
        const event = exampleOf('order.placed.v1');
        delete event[attribute];
        expect(issuesOf(validateEvent(event))).toContainEqual({
          path: `/${attribute}`,
          message: 'is required',
        });
      }
    });

    it('requires specversion 1.0 and JSON data', () => {
      const event = {
        ...exampleOf('order.placed.v1'),
        specversion: '0.3',
        datacontenttype: 'text/xml',
      };
      expect(issuesOf(validateEvent(event))).toEqual([
        { path: '/specversion', message: 'must be "1.0"' },
        { path: '/datacontenttype', message: 'must be "application/json"' },
      ]);
    });

    it('requires an RFC 3339 time with a zone', () => {
      for (const time of [
        'yesterday',
        '2025-01-31 10:00:00',
        '2025-01-31T10:00:00',
        1738317600000,
      ]) {
        const event = { ...exampleOf('order.placed.v1'), time };
        expect(issuesOf(validateEvent(event)).map((issue) => issue.path)).toEqual(['/time']);
      }
      const offset = { ...exampleOf('order.placed.v1'), time: '2025-01-31T11:00:00+01:00' };
      expect(validateEvent(offset).ok).toBe(true);
    });

    it('checks the W3C trace context extension', () => {
      const malformed = { ...exampleOf('order.placed.v1'), traceparent: 'not-a-traceparent' };
      expect(issuesOf(validateEvent(malformed)).map((issue) => issue.path)).toEqual([
        '/traceparent',
      ]);
      const withoutParent: Record<string, unknown> = {
        ...exampleOf('order.placed.v1'),
        tracestate: 'vendor=value',
      };
      delete withoutParent.traceparent;
      expect(issuesOf(validateEvent(withoutParent)).map((issue) => issue.path)).toEqual([
        '/traceparent',
      ]);
      const untraced = exampleOf('order.placed.v1');
      delete untraced.traceparent;
      expect(validateEvent(untraced).ok).toBe(true);
    });

    it('tolerates well-formed extension attributes and refuses others', () => {
      const extended = { ...exampleOf('order.placed.v1'), partitionkey: 'ord_1', sequence: 7 };
      expect(validateEvent(extended).ok).toBe(true);
      const badName = { ...exampleOf('order.placed.v1'), 'Partition-Key': 'x' };
      expect(validateEvent(badName).ok).toBe(false);
      const badValue = { ...exampleOf('order.placed.v1'), partitionkey: { nested: true } };
      expect(issuesOf(validateEvent(badValue)).map((issue) => issue.path)).toContain(
        '/partitionkey',
      );
    });
  });

  it('rejects an unknown type, still listing envelope problems', () => {
    const event = { ...exampleOf('order.placed.v1'), type: 'order.shipped.v1' };
    delete (event as Record<string, unknown>).id;
    const result = validateEvent(event);
    expect(result).toEqual({
      ok: false,
      type: 'order.shipped.v1',
      errors: [
        { path: '/id', message: 'is required' },
        { path: '/type', message: '"order.shipped.v1" is not a known event type' },
      ],
    });
  });

  it('rejects what is not an event at all', () => {
    for (const value of [null, undefined, 'order.placed.v1', 42, [], {}]) {
      const result = validateEvent(value);
      expect(result.ok).toBe(false);
      expect(result.ok || result.type).toBeUndefined();
      expect(issuesOf(result).length).toBeGreaterThan(0);
    }
    expect(validateEvent({ type: 7 })).toMatchObject({ ok: false, type: undefined });
  });

  it('escapes member names in issue paths (RFC 6901)', () => {
    const event = exampleOf('order.confirmed.v1');
    event.data['a/b~c'] = 1;
    expect(issuesOf(validateEvent(event))).toEqual([
      { path: '/data/a~1b~0c', message: 'is not allowed' },
    ]);
  });
});
