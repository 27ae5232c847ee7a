import { randomBytes } from 'node:crypto';
import type { EventBus } from '@bazaar/event-bus';
import { freePort } from '@bazaar/stack';
import { eventually, testStack } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../src/notification';
import {
  createTestDatabase,
  logIn,
  newUserId,
  orderConfirmed,
  publishUnseenUser,
  publisher,
  registerAndLogIn,
  sleep,
  startMailDev,
  startNotifications,
  uniqueGroup,
  userRegistered,
  withMessageId,
  type PrivateMailDev,
  type TestDatabase,
} from './notifications.fixture';

const DOMAIN = 'notifications.bazaar.local';

let bus: EventBus;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  bus = publisher();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await bus?.close();
});

async function setUp(env: Record<string, string> = {}) {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const mail = await startMailDev();
  cleanups.push(() => mail.stop());
  const service = await startNotifications({
    databaseUrl: database.url,
    mail,
    group: uniqueGroup('smtp'),
    env,
  });
  cleanups.push(() => service.stop());
  return { database, mail, service };
}

async function statusesOf(database: TestDatabase, sourceKeys: readonly string[]) {
  const { rows } = await database.pool.query<{
    status: string;
    attempts: number;
    last_error: string | null;
  }>('SELECT status, attempts, last_error FROM deliveries WHERE source_key = ANY($1)', [
    sourceKeys,
  ]);
  return rows;
}

describe('SMTP outages', () => {
  let database: TestDatabase;
  let mail: PrivateMailDev;

  it('emails confirmed while the SMTP server is down for 20 s arrive after it returns, none lost, none doubled', async () => {
    ({ database, mail } = await setUp());
    const userId = newUserId();
    const address = `ntf-${randomBytes(5).toString('hex')}@example.com`;
    await bus.publish(userRegistered(userId, address, 'Outage Olga'));
    // The welcome email: the path to SMTP works before the outage.
    await eventually(async () => ((await mail.emails()).length === 1 ? true : undefined));

    await mail.stop();
    const events = Array.from({ length: 10 }, () => orderConfirmed(userId));
    for (const event of events) await bus.publish(event);
    // Every event is consumed and recorded while SMTP is down: the broker is not holding them.
    await eventually(
      async () => {
        const rows = await statusesOf(
          database,
          events.map((event) => event.id),
        );
        return rows.length === events.length ? rows : undefined;
      },
      { what: 'all deliveries recorded' },
    );
    await sleep(20_000);
    const during = await statusesOf(
      database,
      events.map((event) => event.id),
    );
    expect(during.every((row) => row.status === 'pending' || row.status === 'sending')).toBe(true);
    // It was retried meanwhile, and the reason is kept.
    expect(Math.max(...during.map((row) => row.attempts))).toBeGreaterThan(2);
    // Refused connections: the relay cannot have these messages, so no lookup is needed.
    for (const row of during) expect(row.last_error).toMatch(/ECONNREFUSED/);

    await mail.start();
    const messageIds = events.map((event) => messageIdFor(event.id, userId, DOMAIN));
    await eventually(
      async () => {
        const emails = await mail.emails();
        return messageIds.every((id) => withMessageId(emails, id).length > 0) ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'every email after the outage' },
    );
    await eventually(async () =>
      (
        await statusesOf(
          database,
          events.map((event) => event.id),
        )
      ).every((row) => row.status === 'sent')
        ? true
        : undefined,
    );
    // Settle: a double would have been sent by now.
    await sleep(2_000);
    const emails = await mail.emails();
    for (const id of messageIds) expect(withMessageId(emails, id)).toHaveLength(1);
    expect(emails.filter((email) => email.to.some((to) => to.address === address))).toHaveLength(
      events.length,
    );
  });

  it('dead-letters a delivery with its reason after the last attempt, and an admin can retry it', async () => {
    const closedPort = await freePort();
    const setup = await setUp({
      SMTP_URL: `smtp://127.0.0.1:${closedPort}`,
      DELIVERY_MAX_ATTEMPTS: '3',
      DELIVERY_BACKOFF_BASE_MS: '100',
      DELIVERY_BACKOFF_MAX_MS: '200',
    });
    const userId = newUserId();
    // The address is known before the order event comes (users itself does not know this user).
    await publishUnseenUser(
      bus,
      setup.database.pool,
      userId,
      `ntf-${randomBytes(5).toString('hex')}@example.com`,
    );
    const event = orderConfirmed(userId);
    await bus.publish(event);
    const [dead] = await eventually(
      async () => {
        const rows = await statusesOf(setup.database, [event.id]);
        return rows[0]?.status === 'dead' ? rows : undefined;
      },
      { what: 'dead delivery' },
    );
    expect(dead?.attempts).toBe(3);
    expect(dead?.last_error).toMatch(/ECONNREFUSED/);

    const admin = testStack().admin;
    const token = await logIn(admin.email, admin.password);
    const list = await fetch(`${setup.service.url}/v1/notifications/deliveries?status=dead`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(list.status).toBe(200);
    const { items } = (await list.json()) as {
      items: { id: string; lastError: string; recipient: string }[];
    };
    const ours = items.filter((item) => item.recipient === userId);
    expect(ours).toHaveLength(2); // welcome and order: both could not be sent
    expect(JSON.stringify(items)).not.toContain('@example.com');

    const retry = await fetch(
      `${setup.service.url}/v1/notifications/deliveries/${ours[0]!.id}/retry`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      },
    );
    expect(retry.status).toBe(202);
    expect(((await retry.json()) as { status: string }).status).toBe('pending');
    const unknown = await fetch(
      `${setup.service.url}/v1/notifications/deliveries/dlv_0000000000AAAAAAAAAAAAAAAA/retry`,
      { method: 'POST', headers: { authorization: `Bearer ${token}` } },
    );
    expect(unknown.status).toBe(404);
    const asUser = await fetch(`${setup.service.url}/v1/notifications/deliveries?status=dead`, {
      headers: { authorization: `Bearer ${(await registerAndLogIn()).accessToken}` },
    });
    expect(asUser.status).toBe(403);
  });
});
