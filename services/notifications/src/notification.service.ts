import type pg from 'pg';
import { alertKeyOf, alertParamsOf, type AlertmanagerNotification } from './alert';
import { inTransaction, type Queryable } from './database';
import { deliveryNotDead, deliveryNotFound, invalidCursor, notificationNotFound } from './errors';
import {
  decodeCursor,
  encodeCursor,
  messageIdFor,
  newId,
  notificationOf,
  type HandledEvent,
} from './notification';
import {
  countDeliveriesOf,
  countUnread,
  fanOutAnnouncement,
  findDelivery,
  findPreferences,
  insertDelivery,
  insertInboxEntry,
  listDeliveries,
  listInbox,
  markInboxEntryRead,
  requeueDeadDelivery,
  savePreferences,
  upsertRecipient,
  type Delivery,
  type DeliveryStatus,
  type InboxEntry,
  type Preferences,
} from './notification.repository';
import type { Templates } from './templates';

export interface NotificationServiceDeps {
  readonly pool: pg.Pool;
  readonly templates: Templates;
  readonly messageIdDomain: string;
  readonly operatorsEmail: string;
  /** Called after new deliveries committed, so the dispatcher sends them without waiting to poll. */
  readonly onDeliveriesRecorded: () => void;
  readonly now?: () => Date;
}

export interface InboxPage {
  readonly items: readonly InboxEntry[];
  readonly nextCursor: string | null;
  readonly unreadCount: number;
}

export interface NotificationService {
  /**
   * Applies a consumed event inside the caller's transaction (handleOnce's): projects the
   * recipient, stores the inbox entry and records the email's delivery intent.
   */
  recordEvent(tx: Queryable, event: HandledEvent): Promise<void>;
  listInbox(
    userId: string,
    query: { readonly cursor?: string; readonly limit: number; readonly unreadOnly: boolean },
  ): Promise<InboxPage>;
  markRead(userId: string, id: string): Promise<InboxEntry>;
  preferencesOf(userId: string): Promise<Preferences>;
  updatePreferences(
    userId: string,
    changes: { readonly marketingEmail: boolean },
  ): Promise<Preferences>;
  /** Records one operators' email per (groupKey, status, fingerprints); false for a repeat. */
  recordAlert(notification: AlertmanagerNotification): Promise<{ isNew: boolean; key: string }>;
  /** A marketing message to everyone who has not opted out, once per key. */
  announce(
    key: string,
    content: { readonly title: string; readonly text: string },
  ): Promise<{ recipients: number }>;
  listDeliveries(filter: {
    readonly status?: DeliveryStatus;
    readonly limit: number;
  }): Promise<Delivery[]>;
  retryDelivery(id: string): Promise<Delivery>;
}

export function createNotificationService(deps: NotificationServiceDeps): NotificationService {
  const { pool, templates, now = () => new Date() } = deps;

  return {
    async recordEvent(tx, event) {
      if (event.type === 'user.registered.v1') {
        await upsertRecipient(
          tx,
          { userId: event.data.userId, email: event.data.email, name: event.data.name },
          'event',
        );
      }
      const notification = notificationOf(event);
      const inbox = templates.renderInbox(notification.template, notification.params);
      await insertInboxEntry(tx, {
        id: newId('ntf', now()),
        userId: notification.userId,
        sourceKey: event.id,
        kind: notification.template,
        category: notification.category,
        title: inbox.title,
        body: inbox.body,
        createdAt: now(),
      });
      await insertDelivery(tx, {
        id: newId('dlv', now()),
        sourceKey: event.id,
        recipientKey: notification.userId,
        userId: notification.userId,
        toAddress: null,
        template: notification.template,
        params: notification.params,
        category: notification.category,
        messageId: messageIdFor(event.id, notification.userId, deps.messageIdDomain),
      });
    },

    async listInbox(userId, query) {
      let cursor;
      if (query.cursor !== undefined) {
        cursor = decodeCursor(query.cursor);
        if (cursor === undefined) throw invalidCursor();
      }
      const rows = await listInbox(pool, userId, {
        ...(cursor === undefined ? {} : { cursor }),
        limit: query.limit + 1,
        unreadOnly: query.unreadOnly,
      });
      const items = rows.slice(0, query.limit);
      const last = items.at(-1);
      return {
        items,
        nextCursor:
          rows.length > query.limit && last !== undefined
            ? encodeCursor({ createdAt: last.createdAt, id: last.id })
            : null,
        unreadCount: await countUnread(pool, userId),
      };
    },

    async markRead(userId, id) {
      const entry = await markInboxEntryRead(pool, userId, id, now());
      if (entry === undefined) throw notificationNotFound();
      return entry;
    },

    preferencesOf: (userId) => findPreferences(pool, userId),
    updatePreferences: (userId, changes) => savePreferences(pool, userId, changes),

    async recordAlert(notification) {
      const key = alertKeyOf(notification);
      const isNew = await insertDelivery(pool, {
        id: newId('dlv', now()),
        sourceKey: key,
        recipientKey: 'operators',
        userId: null,
        toAddress: deps.operatorsEmail,
        template: 'alert',
        params: alertParamsOf(notification),
        category: 'operational',
        messageId: messageIdFor(key, 'operators', deps.messageIdDomain),
      });
      if (isNew) deps.onDeliveriesRecorded();
      return { isNew, key };
    },

    async announce(key, content) {
      const sourceKey = `announcement:${key}`;
      const params = { title: content.title, text: content.text };
      const inbox = templates.renderInbox('announcement', params);
      const inserted = await inTransaction(pool, (tx) =>
        fanOutAnnouncement(tx, {
          sourceKey,
          title: inbox.title,
          body: inbox.body,
          params,
          messageIdDomain: deps.messageIdDomain,
          now: now(),
        }),
      );
      if (inserted > 0) deps.onDeliveriesRecorded();
      // The same key again answers the same count: the fan-out happened once.
      return { recipients: await countDeliveriesOf(pool, sourceKey) };
    },

    listDeliveries: (filter) => listDeliveries(pool, filter),

    async retryDelivery(id) {
      const requeued = await requeueDeadDelivery(pool, id);
      if (requeued !== undefined) {
        deps.onDeliveriesRecorded();
        return requeued;
      }
      if ((await findDelivery(pool, id)) === undefined) throw deliveryNotFound();
      throw deliveryNotDead();
    },
  };
}
