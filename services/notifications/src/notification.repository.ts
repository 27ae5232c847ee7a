import type { Queryable } from './database';
import type { Category, InboxCursor, TemplateName } from './notification';

/** The only file that knows the tables (migrations/). */

export interface Recipient {
  readonly userId: string;
  readonly email: string;
  readonly name: string;
}

export interface InboxEntry {
  readonly id: string;
  readonly userId: string;
  readonly kind: TemplateName;
  readonly category: Category;
  readonly title: string;
  readonly body: string;
  readonly createdAt: Date;
  readonly readAt: Date | null;
}

export interface NewInboxEntry {
  readonly id: string;
  readonly userId: string;
  readonly sourceKey: string;
  readonly kind: TemplateName;
  readonly category: Category;
  readonly title: string;
  readonly body: string;
  readonly createdAt: Date;
}

export type DeliveryStatus = 'pending' | 'sending' | 'sent' | 'dead' | 'suppressed';

export interface NewDelivery {
  readonly id: string;
  readonly sourceKey: string;
  readonly recipientKey: string;
  readonly userId: string | null;
  readonly toAddress: string | null;
  readonly template: TemplateName;
  readonly params: Readonly<Record<string, unknown>>;
  readonly category: Category;
  readonly messageId: string;
}

export interface Delivery extends NewDelivery {
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly sentAt: Date | null;
}

/**
 * A delivery claimed by the dispatcher. `wasInFlight`: an earlier attempt never finished (its
 * instance died); `isInDoubt`: an earlier attempt failed at a point where the relay may have the
 * message. Either way, whether it was delivered is unknown.
 */
export interface ClaimedDelivery extends Delivery {
  readonly wasInFlight: boolean;
  readonly isInDoubt: boolean;
}

interface InboxRow {
  id: string;
  user_id: string;
  kind: TemplateName;
  category: Category;
  title: string;
  body: string;
  created_at: Date;
  read_at: Date | null;
}

interface DeliveryRow {
  id: string;
  source_key: string;
  recipient_key: string;
  user_id: string | null;
  to_address: string | null;
  template: TemplateName;
  params: Record<string, unknown>;
  category: Category;
  message_id: string;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
}

function inboxEntryOf(row: InboxRow): InboxEntry {
  return {
    id: row.id,
    userId: row.user_id,
    kind: row.kind,
    category: row.category,
    title: row.title,
    body: row.body,
    createdAt: row.created_at,
    readAt: row.read_at,
  };
}

function deliveryOf(row: DeliveryRow): Delivery {
  return {
    id: row.id,
    sourceKey: row.source_key,
    recipientKey: row.recipient_key,
    userId: row.user_id,
    toAddress: row.to_address,
    template: row.template,
    params: row.params,
    category: row.category,
    messageId: row.message_id,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    sentAt: row.sent_at,
  };
}

const DELIVERY_COLUMNS = `id, source_key, recipient_key, user_id, to_address, template, params, category,
  message_id, status, attempts, last_error, created_at, updated_at, sent_at`;

/** Last error texts are bounded: an SMTP transcript can be long. */
const ERROR_MAX_LENGTH = 1_000;
const bounded = (error: string) => error.slice(0, ERROR_MAX_LENGTH);

// Recipients ------------------------------------------------------------------------------------

/**
 * Records where to write to a user. An address from `user.registered.v1` replaces one looked up
 * through the users API (the event is the owner's statement); a lookup never replaces an event's.
 */
export async function upsertRecipient(
  db: Queryable,
  recipient: Recipient,
  source: 'event' | 'users-api',
): Promise<void> {
  await db.query(
    `INSERT INTO recipients (user_id, email, name, source) VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id) DO UPDATE
       SET email = EXCLUDED.email, name = EXCLUDED.name, source = EXCLUDED.source, updated_at = now()
       WHERE EXCLUDED.source = 'event' OR recipients.source = 'users-api'`,
    [recipient.userId, recipient.email, recipient.name, source],
  );
}

export async function findRecipient(db: Queryable, userId: string): Promise<Recipient | undefined> {
  const result = await db.query<{ user_id: string; email: string; name: string }>(
    'SELECT user_id, email, name FROM recipients WHERE user_id = $1',
    [userId],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { userId: row.user_id, email: row.email, name: row.name };
}

// Preferences -----------------------------------------------------------------------------------

export interface Preferences {
  readonly marketingEmail: boolean;
  readonly updatedAt: Date | null;
}

/** A user who never chose has the defaults: marketing on (they can opt out at any time). */
export async function findPreferences(db: Queryable, userId: string): Promise<Preferences> {
  const result = await db.query<{ marketing_email: boolean; updated_at: Date }>(
    'SELECT marketing_email, updated_at FROM preferences WHERE user_id = $1',
    [userId],
  );
  const row = result.rows[0];
  return row === undefined
    ? { marketingEmail: true, updatedAt: null }
    : { marketingEmail: row.marketing_email, updatedAt: row.updated_at };
}

export async function savePreferences(
  db: Queryable,
  userId: string,
  changes: { readonly marketingEmail: boolean },
): Promise<Preferences> {
  const result = await db.query<{ marketing_email: boolean; updated_at: Date }>(
    `INSERT INTO preferences (user_id, marketing_email) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE SET marketing_email = EXCLUDED.marketing_email, updated_at = now()
     RETURNING marketing_email, updated_at`,
    [userId, changes.marketingEmail],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('upsert returned no row');
  return { marketingEmail: row.marketing_email, updatedAt: row.updated_at };
}

// Inbox -----------------------------------------------------------------------------------------

/** Stores an entry once per (source, user); a repeat is ignored. */
export async function insertInboxEntry(db: Queryable, entry: NewInboxEntry): Promise<void> {
  await db.query(
    `INSERT INTO inbox_entries (id, user_id, source_key, kind, category, title, body, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (source_key, user_id) DO NOTHING`,
    [
      entry.id,
      entry.userId,
      entry.sourceKey,
      entry.kind,
      entry.category,
      entry.title,
      entry.body,
      entry.createdAt,
    ],
  );
}

/** A user's entries, newest first, after `cursor`; `limit + 1` rows tell whether more follow. */
export async function listInbox(
  db: Queryable,
  userId: string,
  options: { readonly cursor?: InboxCursor; readonly limit: number; readonly unreadOnly: boolean },
): Promise<InboxEntry[]> {
  const values: unknown[] = [userId, options.limit];
  let where = 'user_id = $1';
  if (options.unreadOnly) where += ' AND read_at IS NULL';
  if (options.cursor !== undefined) {
    values.push(options.cursor.createdAt, options.cursor.id);
    where += ' AND (created_at, id) < ($3, $4)';
  }
  const result = await db.query<InboxRow>(
    `SELECT id, user_id, kind, category, title, body, created_at, read_at FROM inbox_entries
     WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $2`,
    values,
  );
  return result.rows.map(inboxEntryOf);
}

/** Marks the user's entry read (the first time only); undefined when it is not theirs. */
export async function markInboxEntryRead(
  db: Queryable,
  userId: string,
  id: string,
  now: Date,
): Promise<InboxEntry | undefined> {
  const result = await db.query<InboxRow>(
    `UPDATE inbox_entries SET read_at = COALESCE(read_at, $3)
     WHERE id = $1 AND user_id = $2
     RETURNING id, user_id, kind, category, title, body, created_at, read_at`,
    [id, userId, now],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : inboxEntryOf(row);
}

export async function countUnread(db: Queryable, userId: string): Promise<number> {
  const result = await db.query<{ count: string }>(
    'SELECT count(*) AS count FROM inbox_entries WHERE user_id = $1 AND read_at IS NULL',
    [userId],
  );
  return Number(result.rows[0]?.count ?? 0);
}

// Deliveries ------------------------------------------------------------------------------------

/** Records the intent to send, once per (source, recipient); true when this call created it. */
export async function insertDelivery(db: Queryable, delivery: NewDelivery): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO deliveries (id, source_key, recipient_key, user_id, to_address, template, params,
       category, message_id, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')
     ON CONFLICT (source_key, recipient_key) DO NOTHING`,
    [
      delivery.id,
      delivery.sourceKey,
      delivery.recipientKey,
      delivery.userId,
      delivery.toAddress,
      delivery.template,
      JSON.stringify(delivery.params),
      delivery.category,
      delivery.messageId,
    ],
  );
  return result.rowCount === 1;
}

/**
 * Claims up to `limit` due deliveries for `leaseMs`, committed before any SMTP traffic: pending
 * rows whose time has come, and rows still `sending` whose lease expired — their instance died
 * mid-attempt, so whether the relay got the message is unknown (`wasInFlight`). Concurrent
 * dispatchers skip each other's rows (`SKIP LOCKED`), so a row is attempted by one at a time.
 */
export async function claimDueDeliveries(
  db: Queryable,
  limit: number,
  leaseMs: number,
): Promise<ClaimedDelivery[]> {
  const result = await db.query<
    DeliveryRow & { previous_status: DeliveryStatus; is_in_doubt: boolean }
  >(
    `WITH due AS (
       SELECT id, status AS previous_status FROM deliveries
       WHERE (status = 'pending' AND next_attempt_at <= now())
          OR (status = 'sending' AND lease_until < now())
       ORDER BY next_attempt_at
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     )
     UPDATE deliveries d
       SET status = 'sending', attempts = d.attempts + 1,
           lease_until = now() + make_interval(secs => $2::double precision / 1000), updated_at = now()
     FROM due WHERE d.id = due.id
     RETURNING ${DELIVERY_COLUMNS.split(',')
       .map((column) => `d.${column.trim()}`)
       .join(', ')}, d.is_in_doubt, due.previous_status`,
    [limit, leaseMs],
  );
  return result.rows.map((row) => ({
    ...deliveryOf(row),
    wasInFlight: row.previous_status === 'sending',
    isInDoubt: row.is_in_doubt,
  }));
}

/** Records that the relay has the message. Only the holder of the attempt may (attempt matches). */
export async function markDeliverySent(
  db: Queryable,
  id: string,
  attempt: number,
  outcome: 'accepted' | 'reconciled',
  toAddress: string | null,
): Promise<void> {
  await db.query(
    `UPDATE deliveries SET status = 'sent', outcome = $3, to_address = COALESCE($4, to_address),
       sent_at = now(), lease_until = NULL, last_error = NULL, is_in_doubt = false, updated_at = now()
     WHERE id = $1 AND attempts = $2 AND status = 'sending'`,
    [id, attempt, outcome, toAddress],
  );
}

export async function scheduleDeliveryRetry(
  db: Queryable,
  id: string,
  attempt: number,
  delayMs: number,
  error: string,
  isInDoubt: boolean,
): Promise<void> {
  // Once in doubt, stays in doubt until settled: a later clean failure does not undo an earlier
  // attempt that may have reached the relay.
  await db.query(
    `UPDATE deliveries SET status = 'pending', lease_until = NULL, last_error = $3,
       is_in_doubt = is_in_doubt OR $5,
       next_attempt_at = now() + make_interval(secs => $4::double precision / 1000), updated_at = now()
     WHERE id = $1 AND attempts = $2 AND status = 'sending'`,
    [id, attempt, bounded(error), delayMs, isInDoubt],
  );
}

/** Dead-letters a delivery with its reason, or records it as suppressed (not wanted any more). */
export async function finishDeliveryUnsent(
  db: Queryable,
  id: string,
  attempt: number,
  status: 'dead' | 'suppressed',
  reason: string,
  isInDoubt = false,
): Promise<void> {
  await db.query(
    `UPDATE deliveries SET status = $3, lease_until = NULL, last_error = $4,
       is_in_doubt = is_in_doubt OR $5, updated_at = now()
     WHERE id = $1 AND attempts = $2 AND status = 'sending'`,
    [id, attempt, status, bounded(reason), isInDoubt],
  );
}

export async function listDeliveries(
  db: Queryable,
  filter: {
    readonly status?: DeliveryStatus;
    readonly sourceKey?: string;
    readonly limit: number;
  },
): Promise<Delivery[]> {
  const values: unknown[] = [filter.limit];
  const conditions: string[] = [];
  if (filter.status !== undefined) {
    values.push(filter.status);
    conditions.push(`status = $${values.length}`);
  }
  if (filter.sourceKey !== undefined) {
    values.push(filter.sourceKey);
    conditions.push(`source_key = $${values.length}`);
  }
  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  const result = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries ${where} ORDER BY updated_at DESC, id DESC LIMIT $1`,
    values,
  );
  return result.rows.map(deliveryOf);
}

/** Puts a dead-lettered delivery back in line, starting over at attempt 1; false if not dead. */
export async function requeueDeadDelivery(
  db: Queryable,
  id: string,
): Promise<Delivery | undefined> {
  const result = await db.query<DeliveryRow>(
    `UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
       lease_until = NULL, updated_at = now()
     WHERE id = $1 AND status = 'dead'
     RETURNING ${DELIVERY_COLUMNS}`,
    [id],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : deliveryOf(row);
}

export async function findDelivery(db: Queryable, id: string): Promise<Delivery | undefined> {
  const result = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = $1`,
    [id],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : deliveryOf(row);
}

export async function countDeliveriesOf(db: Queryable, sourceKey: string): Promise<number> {
  const result = await db.query<{ count: string }>(
    'SELECT count(*) AS count FROM deliveries WHERE source_key = $1',
    [sourceKey],
  );
  return Number(result.rows[0]?.count ?? 0);
}

/** Deliveries waiting (pending or in flight), for the backlog gauge. */
export async function countOpenDeliveries(db: Queryable): Promise<number> {
  const result = await db.query<{ count: string }>(
    `SELECT count(*) AS count FROM deliveries WHERE status IN ('pending', 'sending')`,
  );
  return Number(result.rows[0]?.count ?? 0);
}

// Announcements (marketing) ---------------------------------------------------------------------

/**
 * Fans an announcement out to every known recipient who has not opted out of marketing email:
 * one inbox entry and one delivery each, in the caller's transaction, once per announcement key.
 */
export async function fanOutAnnouncement(
  db: Queryable,
  announcement: {
    readonly sourceKey: string;
    readonly title: string;
    readonly body: string;
    readonly params: Readonly<Record<string, unknown>>;
    readonly messageIdDomain: string;
    readonly now: Date;
  },
): Promise<number> {
  // Ids and Message-IDs are derived in SQL here (one statement for any number of recipients); the
  // Message-ID follows the same rule as messageIdFor(): sha256(source \n recipient), 40 hex digits.
  const inserted = await db.query(
    `WITH audience AS (
       SELECT r.user_id FROM recipients r
       LEFT JOIN preferences p ON p.user_id = r.user_id
       WHERE COALESCE(p.marketing_email, true)
     ), inbox AS (
       INSERT INTO inbox_entries (id, user_id, source_key, kind, category, title, body, created_at)
       SELECT 'ntf_' || upper(substr(encode(sha256(convert_to($1 || E'\\n' || user_id, 'UTF8')), 'hex'), 1, 26)),
              user_id, $1, 'announcement', 'marketing', $2, $3, $4
       FROM audience
       ON CONFLICT (source_key, user_id) DO NOTHING
     )
     INSERT INTO deliveries (id, source_key, recipient_key, user_id, template, params, category,
       message_id, status)
     SELECT 'dlv_' || upper(substr(encode(sha256(convert_to($1 || E'\\n' || user_id, 'UTF8')), 'hex'), 1, 26)),
            $1, user_id, user_id, 'announcement', $5, 'marketing',
            '<' || substr(encode(sha256(convert_to($1 || E'\\n' || user_id, 'UTF8')), 'hex'), 1, 40) || '@' || $6 || '>',
            'pending'
     FROM audience
     ON CONFLICT (source_key, recipient_key) DO NOTHING`,
    [
      announcement.sourceKey,
      announcement.title,
      announcement.body,
      announcement.now,
      JSON.stringify(announcement.params),
      announcement.messageIdDomain,
    ],
  );
  return inserted.rowCount ?? 0;
}
