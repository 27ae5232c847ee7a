import { testStack } from '@bazaar/testing';
import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  OPERATORS_EMAIL,
  sleep,
  startMailDev,
  startNotifications,
  uniqueGroup,
  WEBHOOK_TOKEN,
  type NotificationsProcess,
  type PrivateMailDev,
  type TestDatabase,
} from './notifications.fixture';

let database: TestDatabase;
let mail: PrivateMailDev;
let service: NotificationsProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  mail = await startMailDev();
  service = await startNotifications({
    databaseUrl: database.url,
    mail,
    group: uniqueGroup('alerts'),
  });
});

afterAll(async () => {
  await service?.stop();
  await mail?.stop();
  await database?.drop();
});

/** A notification as Alertmanager 0.25 sends it (webhook payload version 4). */
function alertmanagerBody(status: 'firing' | 'resolved') {
  const endsAt = status === 'firing' ? '0001-01-01T00:00:00Z' : '2025-01-31T10:07:00.000Z';
  return {
    receiver: 'notifications',
    status,
    alerts: [
      {
        status,
        labels: { alertname: 'OrdersErrorRate', service: 'orders', severity: 'page' },
        annotations: {
          summary: 'orders answers 5xx to more than 5 % of requests',
          description: 'error ratio 0.12 over 5m <investigate>',
        },
        startsAt: '2025-01-31T10:00:00.000Z',
        endsAt,
        generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=rate',
        fingerprint: 'c0ffee0123456789',
      },
      {
        status,
        labels: {
          alertname: 'OrdersErrorRate',
          service: 'orders',
          severity: 'page',
          instance: 'orders-2',
        },
        annotations: { summary: 'orders answers 5xx to more than 5 % of requests' },
        startsAt: '2025-01-31T10:00:30.000Z',
        endsAt,
        generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=rate',
        fingerprint: 'c0ffee0123456790',
      },
    ],
    groupLabels: { alertname: 'OrdersErrorRate' },
    commonLabels: { alertname: 'OrdersErrorRate', service: 'orders', severity: 'page' },
    commonAnnotations: { summary: 'orders answers 5xx to more than 5 % of requests' },
    externalURL: 'http://127.0.0.1:9093',
    version: '4',
    groupKey: '{}/{severity="page"}:{alertname="OrdersErrorRate"}',
    truncatedAlerts: 0,
  };
}

function post(body: unknown, authorization?: string) {
  return fetch(`${service.url}/v1/alerts/alertmanager`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify(body),
  });
}

async function operatorEmails() {
  return (await mail.emails()).filter((email) =>
    email.to.some((to) => to.address === OPERATORS_EMAIL),
  );
}

describe('the Alertmanager receiver', () => {
  it('refuses a missing or wrong token and records nothing', async () => {
    const missing = await post(alertmanagerBody('firing'));
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(((await missing.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    expect((await post(alertmanagerBody('firing'), `Bearer ${WEBHOOK_TOKEN}x`)).status).toBe(401);
    expect(
      (await post(alertmanagerBody('firing'), `Bearer ${WEBHOOK_TOKEN.slice(0, -1)}`)).status,
    ).toBe(401);
    expect((await post(alertmanagerBody('firing'), `Basic ${WEBHOOK_TOKEN}`)).status).toBe(401);
    const { rows } = await database.pool.query(
      "SELECT 1 FROM deliveries WHERE recipient_key = 'operators'",
    );
    expect(rows).toHaveLength(0);
  });

  it('refuses a body that is not an Alertmanager notification', async () => {
    const response = await post(
      { ...alertmanagerBody('firing'), alerts: [] },
      `Bearer ${WEBHOOK_TOKEN}`,
    );
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('VALIDATION_FAILED');
    expect(
      (await post({ ...alertmanagerBody('firing'), version: '3' }, `Bearer ${WEBHOOK_TOKEN}`))
        .status,
    ).toBe(400);
  });

  it('emails the operators once for firing and once for resolved, however often Alertmanager retries', async () => {
    const auth = `Bearer ${WEBHOOK_TOKEN}`;
    const first = await post(alertmanagerBody('firing'), auth);
    expect(first.status).toBe(200);
    expect(((await first.json()) as { status: string }).status).toBe('accepted');
    for (let retry = 0; retry < 3; retry += 1) {
      const again = await post(alertmanagerBody('firing'), auth);
      expect(again.status).toBe(200);
      expect(((await again.json()) as { status: string }).status).toBe('duplicate');
    }
    // The same alerts in another order are the same notification.
    const reordered = alertmanagerBody('firing');
    reordered.alerts.reverse();
    expect(((await (await post(reordered, auth)).json()) as { status: string }).status).toBe(
      'duplicate',
    );

    expect(
      ((await (await post(alertmanagerBody('resolved'), auth)).json()) as { status: string })
        .status,
    ).toBe('accepted');
    await post(alertmanagerBody('resolved'), auth);

    await eventually(async () => ((await operatorEmails()).length >= 2 ? true : undefined), {
      timeoutMs: 20_000,
      what: 'both operator emails',
    });
    await sleep(2_000);
    const emails = await operatorEmails();
    expect(emails.map((email) => email.subject).sort()).toEqual([
      '[FIRING:2] OrdersErrorRate',
      '[RESOLVED] OrdersErrorRate',
    ]);
    const firing = emails.find((email) => email.subject.startsWith('[FIRING'))!;
    expect(firing.text).toContain('instance = orders-2');
    expect(firing.html).toContain('&lt;investigate&gt;');
  });

  it('is not reachable through the gateway', async () => {
    const response = await fetch(`${testStack().url('gateway')}/v1/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${WEBHOOK_TOKEN}` },
      body: JSON.stringify(alertmanagerBody('firing')),
    });
    expect(response.status).toBe(404);
  });
});
