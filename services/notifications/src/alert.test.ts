import { describe, expect, it } from 'vitest';
import {
  alertKeyOf,
  alertParamsOf,
  fingerprintOf,
  isSameSecret,
  type AlertmanagerNotification,
} from './alert';

function notification(overrides: Partial<AlertmanagerNotification> = {}): AlertmanagerNotification {
  return {
    version: '4',
    groupKey: '{}:{alertname="HighErrorRate"}',
    status: 'firing',
    receiver: 'notifications',
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate', severity: 'page' },
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'HighErrorRate', service: 'orders', severity: 'page' },
        annotations: { summary: 'orders answers 5xx' },
        startsAt: '2025-01-31T10:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: 'aaaa',
      },
      {
        status: 'firing',
        labels: { alertname: 'HighErrorRate', service: 'payments', severity: 'page' },
        annotations: {},
        startsAt: '2025-01-31T10:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: 'bbbb',
      },
    ],
    ...overrides,
  };
}

describe('alertKeyOf', () => {
  it('is one key per (groupKey, status, set of incidents), whatever the order of alerts', () => {
    const base = notification();
    const reordered = notification({ alerts: [...base.alerts].reverse() });
    expect(alertKeyOf(reordered)).toBe(alertKeyOf(base));
    expect(alertKeyOf(notification({ status: 'resolved' }))).not.toBe(alertKeyOf(base));
    expect(alertKeyOf(notification({ groupKey: 'other' }))).not.toBe(alertKeyOf(base));
    expect(alertKeyOf(notification({ alerts: base.alerts.slice(0, 1) }))).not.toBe(
      alertKeyOf(base),
    );
  });

  it('is a new key for the next incident of the same alert (a new startsAt), the same key for retries', () => {
    const base = notification();
    const [first] = base.alerts;
    if (first === undefined) throw new Error('no alert');
    const retried = notification({ alerts: [{ ...first }, ...base.alerts.slice(1)] });
    expect(alertKeyOf(retried)).toBe(alertKeyOf(base));
    const nextIncident = notification({
      alerts: [{ ...first, startsAt: '2025-01-31T14:00:00Z' }, ...base.alerts.slice(1)],
    });
    expect(alertKeyOf(nextIncident)).not.toBe(alertKeyOf(base));
  });

  it('falls back to the labels when a sender leaves the fingerprint out', () => {
    const withoutFingerprint = {
      status: 'firing',
      labels: { alertname: 'HighErrorRate', service: 'orders' },
      annotations: {},
      startsAt: '2025-01-31T10:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
    } as const;
    expect(fingerprintOf(withoutFingerprint)).toBe(
      fingerprintOf({ ...withoutFingerprint, annotations: { other: 'x' } }),
    );
    expect(fingerprintOf(withoutFingerprint)).not.toBe(
      fingerprintOf({ ...withoutFingerprint, labels: { alertname: 'Other' } }),
    );
  });
});

describe('alertParamsOf', () => {
  it('splits firing and resolved alerts and hides the zero end time', () => {
    const params = alertParamsOf(
      notification({
        alerts: [
          notification().alerts[0]!,
          { ...notification().alerts[1]!, status: 'resolved', endsAt: '2025-01-31T10:05:00Z' },
        ],
      }),
    );
    expect(params).toMatchObject({ alertName: 'HighErrorRate', firingCount: 1, resolvedCount: 1 });
    expect((params.firing as { endsAt?: string }[])[0]?.endsAt).toBeUndefined();
    expect((params.resolved as { endsAt?: string }[])[0]?.endsAt).toBe('2025-01-31T10:05:00Z');
  });
});

describe('isSameSecret', () => {
  it('accepts only the exact secret', () => {
    const secret = 'a-webhook-token-of-enough-length-0123456789';
    expect(isSameSecret(secret, secret)).toBe(true);
    expect(isSameSecret(`${secret}x`, secret)).toBe(false);
    expect(isSameSecret('', secret)).toBe(false);
    expect(isSameSecret(secret.toUpperCase(), secret)).toBe(false);
  });
});
