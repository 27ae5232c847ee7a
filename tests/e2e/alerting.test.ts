import { eventually, scaleTestStack, testStack, testStackStatus } from '@bazaar/testing';
import { afterAll, describe, expect, it } from 'vitest';

// Acceptance (issue #10): taking payments down fires BazaarInstanceDown for payments; Alertmanager
// sends it to the notifications webhook, which emails the operators (MailDev) within 2 minutes;
// when payments is back the alert resolves. The test profile scrapes and evaluates every 2 s.

const stack = testStack();
const OPERATORS = 'operators@bazaar.local';

interface MailDevEmail {
  readonly id: string;
  readonly subject: string;
  readonly text?: string;
  readonly html?: string;
  readonly to: readonly { address: string }[];
  readonly time: string;
}

async function operatorEmails(since: number): Promise<MailDevEmail[]> {
  const emails = (await (await fetch(`${stack.url('mail')}/api/email`)).json()) as MailDevEmail[];
  return emails.filter(
    (email) =>
      Date.parse(email.time) >= since - 1000 &&
      email.to.some((to) => to.address.toLowerCase() === OPERATORS),
  );
}

const mentions = (email: MailDevEmail, ...words: string[]) =>
  words.every((word) =>
    `${email.subject}\n${email.text ?? ''}\n${email.html ?? ''}`
      .toLowerCase()
      .includes(word.toLowerCase()),
  );

async function activeAlerts(): Promise<
  { labels: Record<string, string>; status: { state: string } }[]
> {
  return (await (
    await fetch(
      `${stack.url('alertmanager')}/api/v2/alerts?active=true&silenced=false&inhibited=false`,
    )
  ).json()) as never;
}

describe('alerting: payments down', () => {
  let scaledDown = false;
  afterAll(() => {
    // Leave the shared stack as we found it, whatever happened.
    if (scaledDown) scaleTestStack('payments', 1);
  });

  it('emails the operators within 2 minutes of payments going down, and resolves after it is back', async () => {
    const payments = (await testStackStatus()).filter((c) => c.name === 'payments');
    expect(payments.length, 'payments runs in the test stack').toBeGreaterThan(0);
    const notifications = (await testStackStatus()).find((c) => c.name === 'notifications');
    expect(notifications?.state, 'notifications (the alert webhook) is ready').toBe('ready');

    const downAt = Date.now();
    scaleTestStack('payments', 0);
    scaledDown = true;

    const firing = await eventually(
      async () =>
        (await activeAlerts()).find(
          (alert) =>
            alert.labels.alertname === 'BazaarInstanceDown' && alert.labels.service === 'payments',
        ),
      {
        timeoutMs: 110_000,
        intervalMs: 1000,
        what: 'BazaarInstanceDown{service="payments"} in Alertmanager',
      },
    );
    expect(firing.labels.severity).toBe('critical');

    const email = await eventually(
      async () =>
        (await operatorEmails(downAt)).find((candidate) =>
          mentions(candidate, 'BazaarInstanceDown', 'payments'),
        ),
      {
        timeoutMs: Math.max(1000, downAt + 120_000 - Date.now()),
        intervalMs: 1000,
        what: 'the alert email to the operators',
      },
    );
    expect(Date.parse(email.time) - downAt).toBeLessThan(120_000);

    const upAt = Date.now();
    scaleTestStack('payments', 1);
    await eventually(
      async () => {
        const alerts = await activeAlerts();
        return alerts.some(
          (alert) =>
            alert.labels.alertname === 'BazaarInstanceDown' && alert.labels.service === 'payments',
        )
          ? undefined
          : true;
      },
      { timeoutMs: 90_000, intervalMs: 1000, what: 'BazaarInstanceDown for payments resolved' },
    );
    // Alertmanager sends the resolution too (send_resolved); the operators hear that it is over.
    await eventually(
      async () =>
        (await operatorEmails(upAt)).find((candidate) =>
          mentions(candidate, 'BazaarInstanceDown', 'resolved'),
        ),
      { timeoutMs: 60_000, intervalMs: 1000, what: 'the resolved email to the operators' },
    );
  }, 330_000);
});
