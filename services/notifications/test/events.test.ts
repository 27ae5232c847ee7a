import { randomBytes } from 'node:crypto';
import { createEvent } from '@bazaar/contracts';
import { openDeadLetterAdmin, type EventBus } from '@bazaar/event-bus';
import { eventually, testStack } from '@bazaar/testing';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../src/notification';
import {
  createTestDatabase,
  logIn,
  newOrderId,
  newUserId,
  orderConfirmed,
  publishUnseenUser,
  publisher,
  registerAndLogIn,
  sleep,
  startMailDev,
  startNotifications,
  uniqueGroup,
  withMessageId,
  type NotificationsProcess,
  type PrivateMailDev,
  type TestDatabase,
} from './notifications.fixture';

const DOMAIN = 'notifications.bazaar.local';

let database: TestDatabase;
let mail: PrivateMailDev;
let service: NotificationsProcess;
let bus: EventBus;
/** A user registered in users *before* this file's consumer group existed: not in the projection. */
let unseen: { userId: string; email: string; accessToken: string };

beforeAll(async () => {
  unseen = await registerAndLogIn('Unseen Ursula');
  database = await createTestDatabase();
  mail = await startMailDev();
  service = await startNotifications({
    databaseUrl: database.url,
    mail,
    group: uniqueGroup('events'),
  });
  bus = publisher();
});

afterAll(async () => {
  await bus?.close();
  await service?.stop();
  await mail?.stop();
  await database?.drop();
});

async function emailsWith(messageId: string) {
  return withMessageId(await mail.emails(), messageId);
}

/** Waits for the message, then long enough for a duplicate to have arrived too, and returns all. */
async function settledEmailsWith(messageId: string) {
  await eventually(async () => ((await emailsWith(messageId)).length > 0 ? true : undefined), {
    timeoutMs: 20_000,
    what: `email ${messageId}`,
  });
  // Duplicates would come from redeliveries that are already in the queue: give them time to land.
  await sleep(2_000);
  return emailsWith(messageId);
}

async function inbox(accessToken: string, query = '') {
  const response = await fetch(`${service.url}/v1/notifications${query}`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  return {
    status: response.status,
    body: (await response.json()) as {
      items: { id: string; kind: string; title: string; body: string; readAt: string | null }[];
      nextCursor: string | null;
      unreadCount: number;
      code?: string;
    },
  };
}

describe('events to emails and inbox entries', () => {
  it('sends one email per confirmed order when the same event is delivered three times', async () => {
    const user = await registerAndLogIn('Ada <Lovelace> & Co');
    // The real registration event reaches this consumer through users' outbox: the welcome mail.
    const welcomes = await eventually(
      async () => {
        const found = (await mail.emails()).filter((email) =>
          email.to.some((to) => to.address === user.email),
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 20_000, what: 'welcome email' },
    );
    expect(welcomes[0]?.subject).toBe('Welcome to Bazaar');
    // HTML parts escape what users typed; the text part keeps it as typed.
    expect(welcomes[0]?.html).toContain('Ada &lt;Lovelace&gt; &amp; Co');
    expect(welcomes[0]?.html).not.toContain('<Lovelace>');
    expect(welcomes[0]?.text).toContain('Hi Ada <Lovelace> & Co,');

    const event = orderConfirmed(user.userId, newOrderId(), 12_345);
    for (let delivery = 0; delivery < 3; delivery += 1) await bus.publish(event);

    const emails = await settledEmailsWith(messageIdFor(event.id, user.userId, DOMAIN));
    expect(emails).toHaveLength(1);
    expect(emails[0]?.subject).toBe(`Your order ${event.data.orderId} is confirmed`);
    expect(emails[0]?.to.map((to) => to.address)).toEqual([user.email]);
    expect(emails[0]?.text).toContain('$123.45');
    expect(
      (
        await database.pool.query(
          'SELECT count(*)::int AS n FROM processed_events WHERE event_id = $1',
          [event.id],
        )
      ).rows[0],
    ).toEqual({ n: 1 });

    const { body } = await inbox(user.accessToken);
    const entries = body.items.filter((item) => item.kind === 'order-confirmed');
    expect(entries).toHaveLength(1);
    expect(entries[0]?.body).toContain(event.data.orderId);
  });

  it('emails cancellations and refunds with their templates', async () => {
    const userId = newUserId();
    const email = `ntf-${randomBytes(5).toString('hex')}@example.com`;
    await publishUnseenUser(bus, database.pool, userId, email, 'Grace');
    const orderId = newOrderId();
    const cancelled = createEvent('order.cancelled.v1', {
      source: '/orders',
      subject: orderId,
      data: {
        orderId,
        userId,
        reason: 'PAYMENT_DECLINED',
        releasedItems: [{ productId: 'prd_TEST1', quantity: 1 }],
        total: { amount: 999, currency: 'USD' },
        cancelledAt: new Date().toISOString(),
      },
    });
    const refunded = createEvent('payment.refunded.v1', {
      source: '/payments',
      subject: 'pay_TESTREFUND',
      data: {
        paymentId: 'pay_TESTREFUND',
        orderId,
        userId,
        refundId: 'rfd_TEST1',
        amount: { amount: 500, currency: 'USD' },
        totalRefunded: { amount: 500, currency: 'USD' },
        refundedAt: new Date().toISOString(),
      },
    });
    await bus.publish(cancelled);
    await bus.publish(refunded);
    const [cancelMail] = await settledEmailsWith(messageIdFor(cancelled.id, userId, DOMAIN));
    expect(cancelMail?.subject).toBe(`Your order ${orderId} was cancelled`);
    expect(cancelMail?.text).toContain('because the payment was declined');
    expect(cancelMail?.to.map((to) => to.address)).toEqual([email]);
    const [refundMail] = await settledEmailsWith(messageIdFor(refunded.id, userId, DOMAIN));
    expect(refundMail?.subject).toBe(`$5.00 refunded for order ${orderId}`);
  });

  it('finds the address of a user it never saw register through the users service', async () => {
    const event = orderConfirmed(unseen.userId);
    await bus.publish(event);
    const emails = await settledEmailsWith(messageIdFor(event.id, unseen.userId, DOMAIN));
    expect(emails.map((email) => email.to.map((to) => to.address))).toEqual([[unseen.email]]);
    expect(emails[0]?.text).toContain('Hi Unseen Ursula,');
    const { rows } = await database.pool.query<{ source: string }>(
      'SELECT source FROM recipients WHERE user_id = $1',
      [unseen.userId],
    );
    expect(rows).toEqual([{ source: 'users-api' }]);
  });

  it('dead-letters a malformed event and keeps consuming', async () => {
    const connection = await amqp.connect(testStack().rabbitmq);
    const channel = await connection.createConfirmChannel();
    const malformedId = `malformed-${randomBytes(4).toString('hex')}`;
    channel.publish(
      'bazaar.events',
      'order.confirmed.v1',
      Buffer.from('{"specversion":"1.0", "data": {'),
      {
        messageId: malformedId,
        type: 'order.confirmed.v1',
        contentType: 'application/cloudevents+json',
        persistent: true,
      },
    );
    // Valid JSON, right type, but data that breaks the contract (no userId, negative total).
    const invalid = {
      ...orderConfirmed(newUserId()),
      id: `invalid-${randomBytes(4).toString('hex')}`,
    };
    channel.publish(
      'bazaar.events',
      'order.confirmed.v1',
      Buffer.from(
        JSON.stringify({ ...invalid, data: { orderId: 'ord_X', total: { amount: -1 } } }),
      ),
      { messageId: invalid.id, type: 'order.confirmed.v1', persistent: true },
    );
    await channel.waitForConfirms();
    await connection.close();

    const admin = await openDeadLetterAdmin(testStack().rabbitmq);
    try {
      const dead = await eventually(
        async () => {
          const letters = await admin.list(service.group);
          const ours = letters.filter((letter) =>
            [malformedId, invalid.id].includes(letter.eventId ?? ''),
          );
          return ours.length === 2 ? ours : undefined;
        },
        { timeoutMs: 20_000, what: 'both messages in the DLQ' },
      );
      expect(dead.map((letter) => letter.reason)).toEqual(['invalid', 'invalid']);
    } finally {
      await admin.close();
    }

    // The consumer is still there: the next valid event is mailed.
    const user = newUserId();
    await publishUnseenUser(
      bus,
      database.pool,
      user,
      `ntf-${randomBytes(5).toString('hex')}@example.com`,
    );
    const next = orderConfirmed(user);
    await bus.publish(next);
    expect(await settledEmailsWith(messageIdFor(next.id, user, DOMAIN))).toHaveLength(1);
  });
});

describe('the inbox API', () => {
  it('lists my entries newest first in cursor pages, and marks one read', async () => {
    const user = await registerAndLogIn();
    const other = await registerAndLogIn();
    // The welcome entry comes through users' outbox, the orders straight from the bus, and the queue
    // is consumed concurrently: wait for it, so it is the oldest entry.
    await eventually(async () =>
      (await inbox(user.accessToken)).body.items.some((item) => item.kind === 'welcome')
        ? true
        : undefined,
    );
    const events = [
      orderConfirmed(user.userId),
      orderConfirmed(user.userId),
      orderConfirmed(user.userId),
    ];
    for (const event of events) {
      await bus.publish(event);
      // Distinct creation times, so "newest first" has one right answer.
      await eventually(async () =>
        (await inbox(user.accessToken)).body.items.some((item) =>
          item.body.includes(event.data.orderId),
        )
          ? true
          : undefined,
      );
    }
    await bus.publish(orderConfirmed(other.userId));

    // welcome + 3 orders = 4 entries; pages of 3.
    const first = await inbox(user.accessToken, '?limit=3');
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(3);
    expect(first.body.unreadCount).toBe(4);
    expect(first.body.items.map((item) => item.body.match(/ord_\w+/)?.[0])).toEqual(
      [...events].reverse().map((event) => event.data.orderId),
    );
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await inbox(
      user.accessToken,
      `?limit=3&cursor=${encodeURIComponent(first.body.nextCursor ?? '')}`,
    );
    expect(second.body.items.map((item) => item.kind)).toEqual(['welcome']);
    expect(second.body.nextCursor).toBeNull();

    const target = first.body.items[0]!;
    const read = await fetch(`${service.url}/v1/notifications/${target.id}/read`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expect(read.status).toBe(200);
    const readBody = (await read.json()) as { id: string; readAt: string | null };
    expect(readBody.id).toBe(target.id);
    expect(readBody.readAt).toEqual(expect.any(String));
    // Marking again keeps the first time.
    const again = await fetch(`${service.url}/v1/notifications/${target.id}/read`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expect(((await again.json()) as { readAt: string }).readAt).toBe(readBody.readAt);
    expect((await inbox(user.accessToken)).body.unreadCount).toBe(3);
    expect(
      (await inbox(user.accessToken, '?unread=true')).body.items.map((item) => item.id),
    ).not.toContain(target.id);

    // Someone else's entry is not found, and stays unread.
    const stranger = await fetch(
      `${service.url}/v1/notifications/${second.body.items[0]!.id}/read`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${other.accessToken}` },
      },
    );
    expect(stranger.status).toBe(404);
    expect(((await stranger.json()) as { code: string }).code).toBe('NOT_FOUND');
    expect((await inbox(user.accessToken)).body.unreadCount).toBe(3);
    expect((await inbox(other.accessToken)).body.items.map((item) => item.id)).not.toContain(
      target.id,
    );
  });

  it('refuses requests without a valid token, and bad cursors and limits', async () => {
    expect((await fetch(`${service.url}/v1/notifications`)).status).toBe(401);
    const bad = await fetch(`${service.url}/v1/notifications`, {
      headers: { authorization: 'Bearer not-a-token' },
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    const user = await registerAndLogIn();
    const cursor = await inbox(user.accessToken, '?cursor=bm90LWEtY3Vyc29y');
    expect(cursor.status).toBe(400);
    expect(cursor.body.code).toBe('VALIDATION_FAILED');
    expect((await inbox(user.accessToken, '?limit=0')).status).toBe(400);
    expect((await inbox(user.accessToken, '?limit=101')).status).toBe(400);
  });
});

describe('preferences', () => {
  it('opting out of marketing stops announcements but never transactional messages', async () => {
    const admin = testStack().admin;
    const adminToken = await logIn(admin.email, admin.password);
    const keen = await registerAndLogIn('Keen');
    const quiet = await registerAndLogIn('Quiet');
    // Both are projected from their registration events before the announcement goes out.
    for (const user of [keen, quiet]) {
      await eventually(async () =>
        (await inbox(user.accessToken)).body.items.some((item) => item.kind === 'welcome')
          ? true
          : undefined,
      );
    }
    const defaults = await fetch(`${service.url}/v1/notifications/preferences`, {
      headers: { authorization: `Bearer ${quiet.accessToken}` },
    });
    expect(await defaults.json()).toEqual({ marketingEmail: true, updatedAt: null });
    const patched = await fetch(`${service.url}/v1/notifications/preferences`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${quiet.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ marketingEmail: false }),
    });
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as { marketingEmail: boolean }).marketingEmail).toBe(false);
    const unknownField = await fetch(`${service.url}/v1/notifications/preferences`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${quiet.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ marketingEmail: true, transactionalEmail: false }),
    });
    expect(unknownField.status).toBe(400);

    const title = `Spring sale ${randomBytes(3).toString('hex')}`;
    const announce = (token: string, key: string) =>
      fetch(`${service.url}/v1/notifications/announcements`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify({ title, text: 'Everything <b>half</b> price.' }),
      });
    expect((await announce(keen.accessToken, 'k1')).status).toBe(403);
    const key = `spring-${randomBytes(4).toString('hex')}`;
    const first = await announce(adminToken, key);
    expect(first.status).toBe(202);
    const { recipients } = (await first.json()) as { recipients: number };
    const repeat = await announce(adminToken, key);
    expect(await repeat.json()).toEqual({ recipients });

    const keenMails = await eventually(async () => {
      const found = (await mail.emails()).filter(
        (email) => email.subject === title && email.to.some((to) => to.address === keen.email),
      );
      return found.length > 0 ? found : undefined;
    });
    expect(keenMails[0]?.html).toContain('Everything &lt;b&gt;half&lt;/b&gt; price.');
    // A transactional message after the opt-out still reaches the quiet user.
    const order = orderConfirmed(quiet.userId);
    await bus.publish(order);
    await settledEmailsWith(messageIdFor(order.id, quiet.userId, DOMAIN));
    const all = await mail.emails();
    expect(
      all.filter(
        (email) => email.subject === title && email.to.some((to) => to.address === keen.email),
      ),
    ).toHaveLength(1);
    expect(
      all.filter(
        (email) => email.subject === title && email.to.some((to) => to.address === quiet.email),
      ),
    ).toHaveLength(0);
    expect((await inbox(quiet.accessToken)).body.items.map((item) => item.kind)).not.toContain(
      'announcement',
    );
    expect((await inbox(keen.accessToken)).body.items.map((item) => item.kind)).toContain(
      'announcement',
    );
  });
});
