import { createHash, timingSafeEqual } from 'node:crypto';

/** One alert of an Alertmanager webhook notification (payload version 4). */
export interface Alert {
  readonly status: 'firing' | 'resolved';
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly generatorURL?: string;
  readonly fingerprint?: string;
}

/**
 * Alertmanager's webhook body (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
 * Alertmanager retries a notification until it gets a 2xx, so the same body can arrive many times.
 */
export interface AlertmanagerNotification {
  readonly version: string;
  readonly groupKey: string;
  readonly truncatedAlerts?: number;
  readonly status: 'firing' | 'resolved';
  readonly receiver: string;
  readonly groupLabels: Readonly<Record<string, string>>;
  readonly commonLabels: Readonly<Record<string, string>>;
  readonly commonAnnotations: Readonly<Record<string, string>>;
  readonly externalURL: string;
  readonly alerts: readonly Alert[];
}

/**
 * An alert's identity: Alertmanager's fingerprint, or — from senders that leave it out — a hash of
 * its sorted labels (what Alertmanager's fingerprint is derived from).
 */
export function fingerprintOf(alert: Alert): string {
  if (alert.fingerprint !== undefined && alert.fingerprint !== '') return alert.fingerprint;
  const labels = Object.keys(alert.labels)
    .sort()
    .map((name) => `${name}=${alert.labels[name] ?? ''}`)
    .join('\n');
  return createHash('sha256').update(labels).digest('hex').slice(0, 16);
}

/**
 * The deduplication key of a notification: one email per (groupKey, status, set of alert
 * incidents), an incident being an alert's fingerprint with its `startsAt`. A retry of the same
 * notification maps to the same key; a change in the group (an alert added or resolved) is a new
 * message, and so is the next incident of the same alert (it fires again with a new `startsAt`).
 * Alertmanager's reminders of an incident still firing (`repeat_interval`) carry the same key and
 * are not emailed again.
 */
export function alertKeyOf(notification: AlertmanagerNotification): string {
  const incidents = notification.alerts.map((alert) => `${fingerprintOf(alert)}@${alert.startsAt}`);
  const fingerprints = [...new Set(incidents)].sort();
  const digest = createHash('sha256')
    .update(`${notification.groupKey}\n${notification.status}\n${fingerprints.join(',')}`)
    .digest('hex');
  return `alert:${digest}`;
}

/** The template values of the operators' email. */
export function alertParamsOf(notification: AlertmanagerNotification): Record<string, unknown> {
  const firing = notification.alerts.filter((alert) => alert.status === 'firing');
  const resolved = notification.alerts.filter((alert) => alert.status === 'resolved');
  const describe = (alert: Alert) => ({
    name: alert.labels.alertname ?? 'alert',
    severity: alert.labels.severity,
    summary: alert.annotations.summary ?? alert.annotations.description,
    description:
      alert.annotations.summary === undefined ? undefined : alert.annotations.description,
    labels: Object.entries(alert.labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    startsAt: alert.startsAt,
    // Alertmanager sends the zero time for alerts that have not ended.
    endsAt: alert.endsAt.startsWith('0001-') ? undefined : alert.endsAt,
    generatorURL: alert.generatorURL,
  });
  return {
    status: notification.status,
    isFiring: notification.status === 'firing',
    alertName:
      notification.commonLabels.alertname ?? notification.groupLabels.alertname ?? 'alerts',
    groupLabels: Object.entries(notification.groupLabels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    firingCount: firing.length,
    resolvedCount: resolved.length,
    firing: firing.map(describe),
    resolved: resolved.map(describe),
    truncatedAlerts: notification.truncatedAlerts ?? 0,
    externalURL: notification.externalURL,
    receiver: notification.receiver,
  };
}

/**
 * Whether `presented` equals `expected`, in time independent of where they differ — and of their
 * lengths, since both are hashed to 32 bytes first.
 */
export function isSameSecret(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
