import { describe, expect, it } from 'vitest';
import {
  defaultValidator,
  describeIssues,
  envelopeIssues,
  eventIssues,
  invalidEventError,
} from './event';

const valid = {
  specversion: '1.0',
  id: 'e1',
  type: 'order.placed.v1',
  source: '/orders',
  data: {},
};

describe('envelopeIssues', () => {
  it('accepts the minimum the bus routes on', () => {
    expect(envelopeIssues(valid)).toEqual([]);
  });

  it.each([
    [null, ''],
    [[], ''],
    ['text', ''],
    [{ ...valid, id: '' }, '/id'],
    [{ ...valid, id: 7 }, '/id'],
    [{ ...valid, type: 'Order Placed' }, '/type'],
    [{ ...valid, type: 'order.#' }, '/type'],
    [{ ...valid, type: 'order' }, '/type'],
    [{ ...valid, specversion: '0.3' }, '/specversion'],
  ])('refuses %o at %s', (event, path) => {
    expect(envelopeIssues(event).map((issue) => issue.path)).toContain(path);
  });
});

describe('eventIssues', () => {
  it('does not run the schema validator on a broken envelope', () => {
    let calls = 0;
    const issues = eventIssues({ id: 'x' }, () => {
      calls += 1;
      return { ok: true };
    });
    expect(calls).toBe(0);
    expect(issues.length).toBeGreaterThan(0);
  });

  it('reports the schema validator’s issues', () => {
    const issues = eventIssues(valid, () => ({
      ok: false,
      errors: [{ path: '/data/total', message: 'is required' }],
    }));
    expect(describeIssues(issues)).toBe('/data/total: is required');
  });

  it('uses the contracts by default: an order.placed.v1 without data fields is invalid', () => {
    expect(eventIssues(valid, defaultValidator).length).toBeGreaterThan(0);
  });
});

describe('invalidEventError', () => {
  it('is a VALIDATION_FAILED AppError listing the issues', () => {
    const error = invalidEventError(valid, [{ path: '/data/x', message: 'must be integer' }]);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toBe('order.placed.v1 failed validation: /data/x: must be integer');
    expect(error.details?.errors).toEqual([{ path: '/data/x', message: 'must be integer' }]);
  });
});
