/**
 * The Bazaar event bus on RabbitMQ: confirmed publishing, consumers with delayed retries and a DLQ,
 * outbox relays for PostgreSQL and MongoDB, idempotent consumers, DLQ administration.
 * See README.md for the topology and the guarantees.
 */
export {
  createEventBus,
  type ConsumeOptions,
  type EventBus,
  type EventBusOptions,
  type PublishOptions,
} from './event-bus';
export type { Consumer, DeliveryContext, EventHandler, EventHandlers } from './consumer';
export type { EncodedEvent, OutgoingEvent, OutgoingMessage } from './publisher';
export { CLOUDEVENTS_CONTENT_TYPE } from './publisher';
export {
  defaultValidator,
  envelopeIssues,
  type BusEvent,
  type EventIssue,
  type EventMap,
  type EventValidator,
  type ValidationResult,
} from './event';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy';
export { EVENTS_EXCHANGE, groupQueues, type GroupQueues } from './topology';
export { HEADER, type DeadLetterReason } from './message-headers';
export { isDeadlineError } from './deadline';
export {
  enqueueEvents,
  outboxSchemaSql,
  prunePublishedOutbox,
  startPgOutboxRelay,
  type EnqueueOptions,
  type PgOutboxRelay,
  type PgOutboxRelayOptions,
  type Queryable,
} from './pg-outbox';
export {
  duplicateIndexes,
  ensureOutboxIndex,
  outboxEntries,
  pushToOutbox,
  startMongoOutboxRelay,
  type MongoOutboxEntry,
  type MongoOutboxFields,
  type MongoOutboxLease,
  type MongoOutboxRelay,
  type MongoOutboxRelayOptions,
  type WrittenOutbox,
} from './mongo-outbox';
export {
  handleOnce,
  processedEventsSchemaSql,
  type HandleOnceOptions,
  type HandleOnceResult,
} from './idempotent-consumer';
export {
  openDeadLetterAdmin,
  type DeadLetter,
  type DeadLetterAdmin,
  type DeadLetterSelection,
} from './dead-letters';
