import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEvent, type EventTypes } from '@bazaar/contracts';
import { createEventBus, type EventBus } from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import { freePort, repoRoot } from '@bazaar/stack';
import { eventually, testStack } from '@bazaar/testing';
import pg from 'pg';

const SERVICE_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The bundle the stack runs (built by the integration global setup's `start`). */
export const BUNDLE = path.join(SERVICE_DIR, 'dist', 'main.mjs');

/** A database of the test stack's PostgreSQL that only this test file uses; dropped at the end. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  readonly pool: pg.Pool;
  drop(): Promise<void>;
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testStack().postgres });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `notifications_test_${randomBytes(5).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = testStack().postgresDatabase(name);
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  pool.on('error', () => undefined);
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      await withAdminClient((client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      );
    },
  };
}

/** What MailDev's REST API returns per message (the parts the tests read). */
export interface ReceivedEmail {
  readonly id: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly to: readonly { readonly address: string }[];
  readonly headers: Readonly<Record<string, string>>;
}

/** A MailDev of this test alone, which it can stop and start again on the same ports. */
export interface PrivateMailDev {
  readonly smtpUrl: string;
  readonly apiUrl: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  emails(): Promise<ReceivedEmail[]>;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startMailDev(): Promise<PrivateMailDev> {
  const smtpPort = await freePort();
  const webPort = await freePort();
  const apiUrl = `http://127.0.0.1:${webPort}`;
  let child: ChildProcess | undefined;
  const mailDev: PrivateMailDev = {
    smtpUrl: `smtp://127.0.0.1:${smtpPort}`,
    apiUrl,
    async start() {
      child = spawn(
        process.execPath,
        [
          path.join(repoRoot, 'node_modules', 'maildev', 'dist', 'bin', 'maildev.js'),
          '--ip',
          '127.0.0.1',
          '--smtp',
          String(smtpPort),
          '--web-ip',
          '127.0.0.1',
          '--web',
          String(webPort),
          '--silent',
        ],
        { stdio: 'ignore' },
      );
      await eventually(async () => ((await fetch(`${apiUrl}/api/healthz`)).ok ? true : undefined), {
        timeoutMs: 30_000,
        what: 'MailDev ready',
      });
    },
    async stop() {
      if (child === undefined) return;
      child.kill('SIGKILL');
      await waitForExit(child);
      child = undefined;
    },
    async emails() {
      const response = await fetch(`${apiUrl}/api/email`);
      if (!response.ok) throw new Error(`MailDev answered ${response.status}`);
      return (await response.json()) as ReceivedEmail[];
    },
  };
  await mailDev.start();
  return mailDev;
}

/** The emails carrying `messageId`. */
export function withMessageId(emails: readonly ReceivedEmail[], messageId: string) {
  return emails.filter((email) => email.headers['message-id'] === messageId);
}

export const WEBHOOK_TOKEN = `test-alert-webhook-token-${randomBytes(12).toString('hex')}`;
export const OPERATORS_EMAIL = 'operators@test.bazaar.local';

/** A notifications process started from the bundle, as the stack runs it. */
export interface NotificationsProcess {
  readonly url: string;
  readonly group: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly output: () => string;
  stop(): Promise<void>;
}

export interface NotificationsOptions {
  readonly databaseUrl: string;
  readonly mail: PrivateMailDev;
  /** The consumer group (a queue of its own, so the stack's instance never competes). */
  readonly group: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Do not wait for readiness (a process expected to die). */
  readonly isReadinessSkipped?: boolean;
}

export function uniqueGroup(purpose: string): string {
  return `notifications-test-${randomBytes(4).toString('hex')}.${purpose}`;
}

export async function startNotifications(
  options: NotificationsOptions,
): Promise<NotificationsProcess> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: the stack's start builds it`);
  const stack = testStack();
  const port = await freePort();
  const child = spawn(process.execPath, ['--enable-source-maps', BUNDLE], {
    cwd: SERVICE_DIR,
    env: {
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      DATABASE_URL: options.databaseUrl,
      RABBITMQ_URL: stack.rabbitmq,
      JWKS_URL: `${stack.url('users')}/.well-known/jwks.json`,
      USERS_URL: stack.url('users'),
      SMTP_URL: options.mail.smtpUrl,
      MAIL_RECONCILE_URL: options.mail.apiUrl,
      OPERATORS_EMAIL,
      ALERT_WEBHOOK_TOKEN: WEBHOOK_TOKEN,
      CONSUMER_GROUP: options.group,
      SMTP_TIMEOUT_MS: '1000',
      DELIVERY_LEASE_MS: '4000',
      DELIVERY_POLL_MS: '200',
      DELIVERY_BACKOFF_BASE_MS: '200',
      DELIVERY_BACKOFF_MAX_MS: '2000',
      DELIVERY_MAX_ATTEMPTS: '40',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  if (options.isReadinessSkipped !== true) {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output}`);
        return (await fetch(`${url}/readyz`)).ok ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'notifications ready' },
    );
  }
  return {
    url,
    group: options.group,
    exited,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A bus that publishes to the test stack's RabbitMQ. */
export function publisher(): EventBus {
  return createEventBus({
    url: testStack().rabbitmq,
    logger: createLogger({ service: 'notifications-test', level: 'silent' }),
    name: 'notifications-test',
  });
}

export function newUserId(): string {
  return `usr_TEST${randomBytes(11).toString('hex').toUpperCase()}`;
}

export function newOrderId(): string {
  return `ord_TEST${randomBytes(11).toString('hex').toUpperCase()}`;
}

export function userRegistered(userId: string, email: string, name = 'Test User') {
  return createEvent('user.registered.v1', {
    source: '/users',
    subject: userId,
    data: { userId, email, name, registeredAt: new Date().toISOString() },
  });
}

/**
 * Publishes `user.registered.v1` for a user that the users service does not know, and waits until
 * the service's projection has the address. An order event published before that may be handled
 * first (the queue is consumed concurrently); users' API would then answer 404 and the delivery
 * would be dead-lettered as "recipient unknown", which is right for a user nobody knows.
 */
export async function publishUnseenUser(
  bus: EventBus,
  pool: pg.Pool,
  userId: string,
  email: string,
  name?: string,
): Promise<void> {
  await bus.publish(userRegistered(userId, email, name));
  await eventually(
    async () => {
      const { rows } = await pool.query('SELECT 1 FROM recipients WHERE user_id = $1', [userId]);
      return rows.length === 1 ? true : undefined;
    },
    { timeoutMs: 20_000, what: `the address of ${userId} in the projection` },
  );
}

export function orderConfirmed(userId: string, orderId = newOrderId(), amount = 6499) {
  return createEvent('order.confirmed.v1', {
    source: '/orders',
    subject: orderId,
    data: {
      orderId,
      userId,
      paymentId: `pay_TEST${randomBytes(11).toString('hex').toUpperCase()}`,
      total: { amount, currency: 'USD' },
      confirmedAt: new Date().toISOString(),
    },
  });
}

export type AnyEvent = EventTypes[keyof EventTypes];

/** Registers a real account in the test stack's users service and logs it in. */
export async function registerAndLogIn(
  name = 'Notified User',
): Promise<{ userId: string; email: string; accessToken: string }> {
  const users = testStack().url('users');
  const email = `ntf-${randomBytes(6).toString('hex')}@example.com`;
  const password = `a long password ${randomBytes(6).toString('hex')}`;
  const registered = await fetch(`${users}/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name }),
  });
  if (registered.status !== 201) throw new Error(`registration answered ${registered.status}`);
  const { id } = (await registered.json()) as { id: string };
  return { userId: id, email, accessToken: await logIn(email, password) };
}

export async function logIn(email: string, password: string): Promise<string> {
  const response = await fetch(`${testStack().url('users')}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (response.status !== 200) throw new Error(`login answered ${response.status}`);
  return ((await response.json()) as { accessToken: string }).accessToken;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
