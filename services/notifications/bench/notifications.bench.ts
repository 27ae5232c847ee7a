// `npm run bench -- notifications`: end-to-end email throughput of the notifications service running
// as its own process (bundle) — events published to the bench stack's RabbitMQ → consumer
// (handleOnce + delivery log in PostgreSQL) → dispatcher → SMTP → a private MailDev. The baseline,
// measured in the same run against the same kind of sink, is nodemailer sending the same number of
// messages directly with the same pool size: the cost of SMTP alone, without exactly-once.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEvent } from '@bazaar/contracts';
import { createEventBus } from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import {
  describeMachine,
  freePort,
  readStackConfig,
  repoRoot,
  writeBenchmarkSection,
} from '@bazaar/stack';
import { testStack } from '@bazaar/testing';
import { startMailDev, type PrivateMailDev } from '../test/notifications.fixture';
import nodemailer from 'nodemailer';
import pg from 'pg';

const MESSAGES = 1_000;
const SMTP_POOL_SIZE = 4;
const DATABASE = 'notifications_bench';
const serviceDir = path.join(repoRoot, 'services', 'notifications');

const stack = readStackConfig(); // BAZAAR_PROFILE=bench, set by `npm run bench`
const infra = testStack();

async function withAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: infra.postgres });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} not within ${timeoutMs} ms`);
}

/** How many emails MailDev holds (its summary, not the emails themselves). */
async function totalOf(mail: PrivateMailDev): Promise<number> {
  const response = await fetch(`${mail.apiUrl}/api/email/summary?limit=1`);
  return ((await response.json()) as { total: number }).total;
}

async function measureBaseline(): Promise<number> {
  const mail = await startMailDev();
  const transport = nodemailer.createTransport({
    pool: true,
    host: '127.0.0.1',
    port: Number(new URL(mail.smtpUrl).port),
    secure: false,
    ignoreTLS: true,
    maxConnections: SMTP_POOL_SIZE,
  });
  try {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: MESSAGES }, (_, index) =>
        transport.sendMail({
          from: 'Bazaar <no-reply@bazaar.local>',
          to: 'bench@example.com',
          subject: `Your order ord_${index} is confirmed`,
          text: 'Hi Bench,\n\nyour order is confirmed.\n',
          html: '<p>Hi Bench,</p><p>your order is confirmed.</p>',
          messageId: `<baseline-${index}@bench.local>`,
        }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    await waitFor(async () => (await totalOf(mail)) === MESSAGES, 30_000, 'baseline count');
    return seconds;
  } finally {
    transport.close();
    await mail.stop();
  }
}

async function measureService(): Promise<{ recordSeconds: number; totalSeconds: number }> {
  await withAdmin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await withAdmin(`CREATE DATABASE ${DATABASE}`);
  const mail = await startMailDev();
  const port = await freePort();
  const databaseUrl = infra.postgresDatabase(DATABASE);
  const child = spawn(process.execPath, [path.join(serviceDir, 'dist', 'main.mjs')], {
    cwd: serviceDir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: stack.childEnv.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      DATABASE_URL: databaseUrl,
      RABBITMQ_URL: infra.rabbitmq,
      JWKS_URL: `${infra.url('users')}/.well-known/jwks.json`,
      SMTP_URL: mail.smtpUrl,
      SMTP_POOL_SIZE: String(SMTP_POOL_SIZE),
      MAIL_RECONCILE_URL: mail.apiUrl,
      OPERATORS_EMAIL: 'operators@bench.local',
      ALERT_WEBHOOK_TOKEN: randomBytes(24).toString('hex'),
      USERS_CLIENT_SECRET: randomBytes(24).toString('hex'),
      CONSUMER_GROUP: `notifications-bench-${randomBytes(3).toString('hex')}.events`,
      DELIVERY_BATCH_SIZE: '32',
    },
  });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const bus = createEventBus({
    url: infra.rabbitmq,
    logger: createLogger({ service: 'notifications-bench', level: 'silent' }),
    name: 'notifications-bench',
  });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 30_000, 'ready');
    const userId = `usr_BENCH${randomBytes(8).toString('hex').toUpperCase()}`;
    await bus.publish(
      createEvent('user.registered.v1', {
        source: '/users',
        subject: userId,
        data: {
          userId,
          email: 'bench@example.com',
          name: 'Bench',
          registeredAt: new Date().toISOString(),
        },
      }),
    );
    await waitFor(
      async () =>
        (await pool.query(`SELECT 1 FROM deliveries WHERE status = 'sent'`)).rowCount === 1,
      30_000,
      'welcome email',
    );
    const events = Array.from({ length: MESSAGES }, (_, index) =>
      createEvent('order.confirmed.v1', {
        source: '/orders',
        subject: `ord_BENCH${index}`,
        data: {
          orderId: `ord_BENCH${index}`,
          userId,
          paymentId: `pay_BENCH${index}`,
          total: { amount: 1000 + index, currency: 'USD' },
          confirmedAt: new Date().toISOString(),
        },
      }),
    );
    const started = performance.now();
    const published = await bus.publishBatch(events.map((event) => ({ event })));
    if (published.some((result) => result.status === 'rejected')) throw new Error('publish failed');
    const count = async (where: string) =>
      Number(
        (await pool.query<{ n: string }>(`SELECT count(*) AS n FROM deliveries ${where}`)).rows[0]
          ?.n,
      );
    let recordSeconds = 0;
    await waitFor(
      async () => {
        if (recordSeconds === 0 && (await count('')) === MESSAGES + 1) {
          recordSeconds = (performance.now() - started) / 1000;
        }
        return (await count(`WHERE status = 'sent'`)) === MESSAGES + 1;
      },
      300_000,
      'every email sent',
    );
    const totalSeconds = (performance.now() - started) / 1000;
    if (recordSeconds === 0) recordSeconds = totalSeconds;
    await waitFor(async () => (await totalOf(mail)) === MESSAGES + 1, 30_000, 'MailDev count');
    return { recordSeconds, totalSeconds };
  } finally {
    await bus.close();
    await pool.end();
    child.kill('SIGTERM');
    await mail.stop();
    await sleep(500);
    await withAdmin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  }
}

const baselineSeconds = await measureBaseline();
const { recordSeconds, totalSeconds } = await measureService();
const rate = (seconds: number) => Math.round(MESSAGES / seconds).toLocaleString('en-US');

const markdown = `## notifications

\`npm run bench -- notifications\` ([services/notifications/bench/notifications.bench.ts](../services/notifications/bench/notifications.bench.ts)),
${new Date().toISOString().slice(0, 10)}, on ${describeMachine()}.

${MESSAGES.toLocaleString('en-US')} \`order.confirmed.v1\` events published at once to the bench stack's RabbitMQ; one
notifications process (bundle, \`NODE_ENV=production\`) consumes them (\`handleOnce\` + inbox entry + delivery row
per event, in PostgreSQL), and its dispatcher sends each email (\`SMTP_POOL_SIZE=${SMTP_POOL_SIZE}\`) to a private MailDev.
Baseline, same run: nodemailer alone sending the same number of messages to a fresh MailDev with the same pool size.

| Path | Time for ${MESSAGES.toLocaleString('en-US')} | Rate |
| --- | --- | --- |
| Events consumed and recorded (inbox + delivery log) | ${recordSeconds.toFixed(2)} s | ${rate(recordSeconds)} events/s |
| Events → emails accepted by the relay and recorded \`sent\` | ${totalSeconds.toFixed(2)} s | ${rate(totalSeconds)} emails/s |
| Baseline: nodemailer → MailDev, no log, no exactly-once | ${baselineSeconds.toFixed(2)} s | ${rate(baselineSeconds)} emails/s |

Every email was counted at the sink afterwards (${(MESSAGES + 1).toLocaleString('en-US')} including the welcome message, none doubled).
`;
writeBenchmarkSection('notifications', markdown);
console.log(markdown);
