export type * from './generated/event-types';
export { eventTypeNames } from './generated/event-types';
export { isEventType, routingKeyOf } from './event-type';
export {
  validateEvent,
  type EventValidationIssue,
  type EventValidationResult,
} from './event-validation';
export { createEvent, InvalidEventError, type CreateEventInput } from './event-factory';
