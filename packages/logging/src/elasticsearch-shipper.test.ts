import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createElasticsearchShipper, type ElasticsearchShipper } from './elasticsearch-shipper';
import { createLogger } from './logger';

// A stand-in bulk endpoint on 127.0.0.1 that records the bulk requests it receives and has the
// `bazaar-logs` index template while `template.exists` (the real Elasticsearch is exercised by
// tests/e2e/observability.test.ts).
async function bulkServer(status = 200, template = { exists: true }) {
  const bodies: string[] = [];
  const server = http.createServer((request, response) => {
    if (request.url === '/_index_template/bazaar-logs') {
      response.writeHead(template.exists ? 200 : 404).end('{}');
      return;
    }
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      bodies.push(`${request.method} ${request.url}\n${body}`);
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ errors: false, items: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, bodies, close: () => server.close() };
}

describe('createElasticsearchShipper', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('ships lines with the bulk API into the daily index of their time, with @timestamp', async () => {
    const server = await bulkServer();
    cleanups.push(server.close);
    const shipper = createElasticsearchShipper({ url: server.url, flushIntervalMs: 50 });
    cleanups.push(() => shipper.close());
    shipper.write(
      '{"level":"info","time":"2026-11-24T10:00:00.000Z","service":"orders","msg":"a"}\n',
    );
    shipper.write(
      '{"level":"warn","time":"2026-11-25T00:00:01.000Z","service":"orders","msg":"b"}\n',
    );
    await shipper.flush();
    expect(server.bodies).toHaveLength(1);
    const [head, ...lines] = (server.bodies[0] ?? '').trimEnd().split('\n');
    expect(head).toBe('POST /_bulk');
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[0] ?? '')).toEqual({ create: { _index: 'bazaar-logs-2026.11.24' } });
    expect(JSON.parse(lines[1] ?? '')).toMatchObject({
      '@timestamp': '2026-11-24T10:00:00.000Z',
      msg: 'a',
      service: 'orders',
    });
    expect(JSON.parse(lines[2] ?? '')).toEqual({ create: { _index: 'bazaar-logs-2026.11.25' } });
    expect(shipper.stats()).toEqual({ shipped: 2, dropped: 0, buffered: 0 });
  });

  it('never blocks or throws when Elasticsearch is unreachable, and keeps memory bounded by dropping', async () => {
    const server = await bulkServer();
    server.close(); // the port is now refused
    const failures: string[] = [];
    const shipper: ElasticsearchShipper = createElasticsearchShipper({
      url: server.url,
      maxBufferedLines: 100,
      batchSize: 10,
      flushIntervalMs: 20,
      onStateChange: (state) => failures.push(state),
    });
    cleanups.push(() => shipper.close(100));
    const started = Date.now();
    for (let i = 0; i < 1000; i += 1) {
      shipper.write(`{"level":"info","time":"${new Date().toISOString()}","msg":"line ${i}"}\n`);
    }
    expect(Date.now() - started).toBeLessThan(1000);
    await shipper.flush();
    const stats = shipper.stats();
    expect(stats.buffered).toBeLessThanOrEqual(100);
    expect(stats.shipped).toBe(0);
    expect(stats.dropped).toBeGreaterThanOrEqual(900);
    expect(failures).toEqual(['failing']);
  });

  it('recovers and ships what it kept once Elasticsearch answers again', async () => {
    let fail = true;
    const bodies: string[] = [];
    const server = http.createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        if (fail) {
          response.writeHead(503).end();
          return;
        }
        bodies.push(body);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"errors":false}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => server.close());
    const states: string[] = [];
    const shipper = createElasticsearchShipper({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      flushIntervalMs: 10,
      onStateChange: (state) => states.push(state),
    });
    cleanups.push(() => shipper.close());
    shipper.write('{"level":"info","time":"2026-11-24T10:00:00.000Z","msg":"kept"}\n');
    await shipper.flush();
    expect(shipper.stats().buffered).toBe(1);
    fail = false;
    const deadline = Date.now() + 5000;
    while (shipper.stats().shipped === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(shipper.stats()).toEqual({ shipped: 1, dropped: 0, buffered: 0 });
    expect(bodies.join('')).toContain('"msg":"kept"');
    expect(states).toEqual(['failing', 'recovered']);
  });

  it('holds the lines while the index template is missing, and ships them once it exists', async () => {
    const template = { exists: false };
    const server = await bulkServer(200, template);
    cleanups.push(server.close);
    const states: string[] = [];
    const shipper = createElasticsearchShipper({
      url: server.url,
      flushIntervalMs: 10,
      onStateChange: (state, detail) => states.push(`${state}: ${detail}`),
    });
    cleanups.push(() => shipper.close());
    shipper.write('{"level":"info","time":"2026-11-24T10:00:00.000Z","msg":"early"}\n');
    await shipper.flush();
    expect(server.bodies).toEqual([]);
    expect(shipper.stats()).toEqual({ shipped: 0, dropped: 0, buffered: 1 });
    template.exists = true;
    const deadline = Date.now() + 5000;
    while (shipper.stats().shipped === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(shipper.stats()).toEqual({ shipped: 1, dropped: 0, buffered: 0 });
    expect(server.bodies.join('')).toContain('"msg":"early"');
    expect(states[0]).toBe('failing: index template bazaar-logs is not installed yet');
  });

  it('receives every line a logger writes, after redaction', async () => {
    const server = await bulkServer();
    cleanups.push(server.close);
    const shipper = createElasticsearchShipper({ url: server.url, flushIntervalMs: 50 });
    cleanups.push(() => shipper.close());
    const lines: string[] = [];
    const logger = createLogger({
      service: 'payments',
      destination: { write: (line: string) => lines.push(line) },
      shipTo: shipper,
    });
    logger.info({ password: 'hunter2', orderId: 'ord_1' }, 'authorizing');
    await shipper.flush();
    expect(lines).toHaveLength(1);
    const shippedBody = server.bodies.join('');
    expect(shippedBody).toContain('"orderId":"ord_1"');
    expect(shippedBody).toContain('"password":"[REDACTED]"');
    expect(shippedBody).not.toContain('hunter2');
  });
});
