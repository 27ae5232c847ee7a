import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isSameSecret, type AlertmanagerNotification } from './alert';
import { invalidWebhookToken } from './errors';
import type { NotificationService } from './notification.service';

export interface AlertRoutesDeps {
  readonly notifications: NotificationService;
  readonly webhookToken: string;
}

const labelMap = {
  type: 'object',
  additionalProperties: { type: 'string', maxLength: 10_000 },
} as const;

// Alertmanager's webhook payload, version 4. Unknown members are allowed: Alertmanager may add some.
const notificationSchema = {
  type: 'object',
  required: [
    'version',
    'groupKey',
    'status',
    'receiver',
    'groupLabels',
    'commonLabels',
    'commonAnnotations',
    'externalURL',
    'alerts',
  ],
  properties: {
    version: { type: 'string', const: '4' },
    groupKey: { type: 'string', minLength: 1, maxLength: 10_000 },
    truncatedAlerts: { type: 'integer', minimum: 0 },
    status: { type: 'string', enum: ['firing', 'resolved'] },
    receiver: { type: 'string', maxLength: 1_000 },
    groupLabels: labelMap,
    commonLabels: labelMap,
    commonAnnotations: labelMap,
    externalURL: { type: 'string', maxLength: 2_000 },
    alerts: {
      type: 'array',
      minItems: 1,
      maxItems: 1_000,
      items: {
        type: 'object',
        required: ['status', 'labels', 'annotations', 'startsAt', 'endsAt'],
        properties: {
          status: { type: 'string', enum: ['firing', 'resolved'] },
          labels: labelMap,
          annotations: labelMap,
          startsAt: { type: 'string', maxLength: 64 },
          endsAt: { type: 'string', maxLength: 64 },
          generatorURL: { type: 'string', maxLength: 2_000 },
          fingerprint: { type: 'string', maxLength: 128 },
        },
      },
    },
  },
} as const;

/** `Authorization: Bearer <ALERT_WEBHOOK_TOKEN>`, compared in constant time. */
function isAuthorized(request: FastifyRequest, expected: string): boolean {
  const header = request.headers.authorization;
  const match = header === undefined ? null : /^Bearer ([^\s]+)$/i.exec(header);
  // Compare even without a token, so a missing header costs the same as a wrong one.
  return isSameSecret(match?.[1] ?? '', expected) && match !== null;
}

/**
 * `POST /v1/alerts/alertmanager`: Alertmanager's webhook receiver. Served on the service port only
 * (the gateway does not route it). Answers 200 once the email is recorded — also for a repeat, so
 * Alertmanager stops retrying — and the dispatcher sends it.
 */
export function registerAlertRoutes(app: FastifyInstance, deps: AlertRoutesDeps): void {
  app.post<{ Body: AlertmanagerNotification }>(
    '/v1/alerts/alertmanager',
    {
      // Checked before the body is parsed: an unauthenticated caller gets 401, whatever it sends.
      onRequest: async (request, reply) => {
        if (!isAuthorized(request, deps.webhookToken)) {
          void reply.header('www-authenticate', 'Bearer realm="alertmanager"');
          throw invalidWebhookToken();
        }
      },
      schema: {
        body: notificationSchema,
        response: {
          200: {
            type: 'object',
            required: ['status', 'key'],
            properties: { status: { type: 'string' }, key: { type: 'string' } },
          },
        },
      },
    },
    async (request) => {
      const { isNew, key } = await deps.notifications.recordAlert(request.body);
      return { status: isNew ? 'accepted' : 'duplicate', key };
    },
  );
}
