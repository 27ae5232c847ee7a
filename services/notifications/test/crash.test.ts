import { randomBytes } from 'node:crypto';
import type { EventBus } from '@bazaar/event-bus';
import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../src/notification';
import {
  createTestDatabase,
  newUserId,
  publisher,
  sleep,
  startMailDev,
  startNotifications,
  uniqueGroup,
  userRegistered,
  withMessageId,
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

/**
 * An instance that SIGKILLs itself right after the relay accepted the message and before the
 * delivery is recorded; then a healthy instance on the same database and queue takes over.
 */
async function crashBetweenSendAndRecord(reconcile: boolean) {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const mail = await startMailDev();
  cleanups.push(() => mail.stop());
  const group = uniqueGroup('crash');
  const reconcileEnv = reconcile ? {} : { MAIL_RECONCILE_URL: '' };

  const doomed = await startNotifications({
    databaseUrl: database.url,
    mail,
    group,
    env: { FAULT_CRASH_AFTER_SEND: 'true', ...reconcileEnv },
  });
  cleanups.push(() => doomed.stop());
  const userId = newUserId();
  const event = userRegistered(userId, `ntf-${randomBytes(5).toString('hex')}@example.com`);
  await bus.publish(event);
  const messageId = messageIdFor(event.id, userId, DOMAIN);

  const exit = await doomed.exited;
  expect(exit.signal).toBe('SIGKILL');
  // The relay has the message, and the log still says it is in flight: the dangerous window.
  expect(withMessageId(await mail.emails(), messageId)).toHaveLength(1);
  const { rows: before } = await database.pool.query<{ status: string }>(
    'SELECT status FROM deliveries WHERE source_key = $1',
    [event.id],
  );
  expect(before).toEqual([{ status: 'sending' }]);

  const healthy = await startNotifications({
    databaseUrl: database.url,
    mail,
    group,
    env: reconcileEnv,
  });
  cleanups.push(() => healthy.stop());
  // The lease (4 s) expires, the healthy instance claims the in-doubt delivery and settles it.
  const [after] = await eventually(
    async () => {
      const { rows } = await database.pool.query<{ status: string; outcome: string }>(
        'SELECT status, outcome FROM deliveries WHERE source_key = $1',
        [event.id],
      );
      return rows[0]?.status === 'sent' ? rows : undefined;
    },
    { timeoutMs: 20_000, what: 'delivery settled after the restart' },
  );
  await sleep(2_000);
  return { after, emails: withMessageId(await mail.emails(), messageId) };
}

describe('a crash between sending and recording', () => {
  it('sends exactly one email: the restarted instance finds the message at the relay', async () => {
    const { after, emails } = await crashBetweenSendAndRecord(true);
    expect(after?.outcome).toBe('reconciled');
    expect(emails).toHaveLength(1);
  });

  it('without a relay to ask, the message is sent again (the documented at-least-once fallback)', async () => {
    // The control experiment: proves the first test depends on the reconciliation, and documents
    // what a plain SMTP relay gives (ADR 0005).
    const { after, emails } = await crashBetweenSendAndRecord(false);
    expect(after?.outcome).toBe('accepted');
    expect(emails).toHaveLength(2);
    expect(new Set(emails.map((email) => email.headers['message-id'])).size).toBe(1);
  });
});
