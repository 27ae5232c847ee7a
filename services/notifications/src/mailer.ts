import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type { RenderedMessage } from './templates';

export interface OutgoingMail extends RenderedMessage {
  readonly to: string;
  readonly messageId: string;
}

/** Why a send failed, and whether trying again can help. */
export class MailSendError extends Error {
  override readonly name = 'MailSendError';
  constructor(
    message: string,
    /** A 5xx SMTP reply (RFC 5321 §4.2.1): the relay refuses this message for good. */
    readonly isPermanent: boolean,
    /**
     * False when the failure came before the message was complete (connect, greeting, envelope):
     * the relay cannot have it. True for failures during or after DATA, or of unknown place.
     */
    readonly isMaybeDelivered: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Whether a nodemailer failure can only have happened before the relay had the whole message:
 * the connection was never made, the name did not resolve, the relay refused the envelope or the
 * login. Anything else (a socket closed or timed out during DATA, an unknown place) may have left
 * the message at the relay.
 */
function isBeforeTransfer(error: unknown): boolean {
  const { syscall, code, command, message } = error as {
    syscall?: unknown;
    code?: unknown;
    command?: unknown;
    message?: unknown;
  };
  if (syscall === 'connect') return true;
  if (code === 'EDNS' || code === 'EENVELOPE' || code === 'EAUTH') return true;
  if (message === 'Greeting never received') return true;
  return (
    typeof command === 'string' &&
    ['EHLO', 'HELO', 'LHLO', 'STARTTLS', 'MAIL FROM', 'RCPT TO'].includes(command)
  );
}

export interface Mailer {
  /** Resolves once the relay accepted the message (250 after DATA). */
  send(mail: OutgoingMail): Promise<void>;
  /** Checks the relay answers (EHLO), for diagnostics. */
  verify(): Promise<void>;
  close(): void;
}

export interface MailerOptions {
  readonly url: string;
  readonly from: string;
  readonly timeoutMs: number;
  readonly poolSize: number;
}

/**
 * SMTP through nodemailer's pooled transport: a few long-lived connections, each phase with a
 * deadline, so a dead or stalled relay fails an attempt quickly instead of holding a lease.
 */
export function createMailer(options: MailerOptions): Mailer {
  const url = new URL(options.url);
  const transportOptions: SMTPPool.Options = {
    pool: true,
    host: url.hostname,
    port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 587)),
    secure: url.protocol === 'smtps:',
    maxConnections: options.poolSize,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
    dnsTimeout: options.timeoutMs,
    // A loopback sink offers no certificate worth checking; a real relay's STARTTLS is used when offered.
    ...(url.hostname === '127.0.0.1' || url.hostname === 'localhost' ? { ignoreTLS: true } : {}),
    ...(url.username === ''
      ? {}
      : {
          auth: {
            user: decodeURIComponent(url.username),
            pass: decodeURIComponent(url.password),
          },
        }),
  };
  const transport = nodemailer.createTransport(transportOptions);

  return {
    async send(mail) {
      try {
        await transport.sendMail({
          from: options.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          messageId: mail.messageId,
          headers: { 'Auto-Submitted': 'auto-generated' },
        });
      } catch (error) {
        const { responseCode } = error as { responseCode?: unknown };
        const isPermanent =
          typeof responseCode === 'number' && responseCode >= 500 && responseCode < 600;
        const isMaybeDelivered = !isBeforeTransfer(error);
        const detail = error instanceof Error ? error.message : String(error);
        throw new MailSendError(`SMTP: ${detail}`, isPermanent, isMaybeDelivered, { cause: error });
      }
    },
    async verify() {
      await transport.verify();
    },
    close: () => transport.close(),
  };
}
