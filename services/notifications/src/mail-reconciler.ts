import type { HttpClient } from '@bazaar/http-client';

/**
 * Tells whether the relay already holds a message, by its Message-ID. Used only for an attempt
 * whose outcome is unknown (ADR 0005): a lookup that fails throws, and the delivery waits — it is
 * never resent on a guess.
 */
export interface MailReconciler {
  hasMessage(messageId: string): Promise<boolean>;
}

/** MailDev's REST API: `GET /api/email?headers.message-id=<id>` lists the matching messages. */
export function createMailDevReconciler(client: HttpClient): MailReconciler {
  return {
    async hasMessage(messageId) {
      const response = await client.request({
        method: 'GET',
        path: '/api/email',
        query: { 'headers.message-id': messageId },
      });
      if (response.status !== 200 || !Array.isArray(response.body)) {
        throw new Error(`the mail API answered ${response.status}`);
      }
      return response.body.length > 0;
    },
  };
}
