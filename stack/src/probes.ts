import http from 'node:http';
import net from 'node:net';
import pg from 'pg';

/** A readiness probe: resolves when the component answers like a healthy one, rejects otherwise. */
export type Probe = (signal: AbortSignal) => Promise<void>;

function withSocket(
  port: number,
  signal: AbortSignal,
  onConnect: (socket: net.Socket, done: (error?: Error) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let settled = false;
    const done = (error?: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => done(new Error(`probe of :${port} timed out`));
    signal.addEventListener('abort', onAbort);
    socket.on('error', (error) => done(error));
    socket.on('close', () => done(new Error(`:${port} closed the connection`)));
    socket.on('connect', () => onConnect(socket, done));
  });
}

/** The port accepts TCP connections. */
export const tcpProbe =
  (port: number): Probe =>
  (signal) =>
    withSocket(port, signal, (_socket, done) => done());

/**
 * An HTTP GET answers 2xx (and, optionally, a body check passes). node:http rather than fetch:
 * fetch refuses the WHATWG "bad ports" (e.g. 10080, the edge's port at test offset 2000).
 */
export const httpProbe =
  (url: string, isHealthyBody: (body: string) => boolean = () => true): Probe =>
  (signal) =>
    new Promise((resolve, reject) => {
      const request = http.get(url, { signal }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status < 200 || status > 299) reject(new Error(`${url} answered ${status}`));
          else if (!isHealthyBody(body)) reject(new Error(`${url} answered an unhealthy body`));
          else resolve();
        });
      });
      request.on('error', reject);
    });

/** Redis answers PING with PONG after AUTH (RESP inline commands). */
export const redisProbe =
  (port: number, password: string): Probe =>
  (signal) =>
    withSocket(port, signal, (socket, done) => {
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => {
        received += chunk;
        if (received.includes('+PONG')) done();
        else if (received.includes('-')) done(new Error(`redis: ${received.trim()}`));
      });
      socket.write(`AUTH ${JSON.stringify(password)}\r\nPING\r\n`);
    });

/**
 * RabbitMQ is past boot when it answers the AMQP 0-9-1 protocol header with a Connection.Start
 * method frame (frame type 1, channel 0, class 10, method 10).
 */
export const amqpProbe =
  (port: number): Probe =>
  (signal) =>
    withSocket(port, signal, (socket, done) => {
      socket.once('data', (chunk: Buffer) => {
        const isConnectionStart =
          chunk.length >= 11 &&
          chunk.readUInt8(0) === 1 &&
          chunk.readUInt16BE(1) === 0 &&
          chunk.readUInt16BE(7) === 10 &&
          chunk.readUInt16BE(9) === 10;
        done(isConnectionStart ? undefined : new Error('amqp: unexpected greeting'));
      });
      socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    });

/** PostgreSQL accepts a password login and runs a query. */
export const postgresProbe =
  (connectionString: string): Probe =>
  async (signal) => {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined); // a server going away mid-probe is a failed probe, not a crash
    const onAbort = () => void client.end().catch(() => undefined);
    signal.addEventListener('abort', onAbort);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      signal.removeEventListener('abort', onAbort);
      await client.end().catch(() => undefined);
    }
  };

/**
 * A MongoDB wire-protocol server answers `{ping: 1}` (an OP_MSG, opcode 2013) with `ok: 1`. Written
 * by hand, forty lines, so the stack does not need the whole driver to ask one question.
 */
export const mongoProbe =
  (port: number): Probe =>
  (signal) =>
    withSocket(port, signal, (socket, done) => {
      const document = bsonDocument({ ping: 1, $db: 'admin' });
      const header = Buffer.alloc(21);
      header.writeInt32LE(21 + document.length, 0);
      header.writeInt32LE(1, 4); // requestID
      header.writeInt32LE(0, 8); // responseTo
      header.writeInt32LE(2013, 12); // OP_MSG
      header.writeUInt32LE(0, 16); // flagBits
      header.writeUInt8(0, 20); // section kind 0: body
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < 4 || received.length < received.readInt32LE(0)) return;
        // The reply body is a BSON document; `ok` is a double 1.0 on success.
        const okAt = received.indexOf(Buffer.from([0x01, 0x6f, 0x6b, 0x00]));
        const ok = okAt >= 0 && received.readDoubleLE(okAt + 4) === 1;
        done(ok ? undefined : new Error('mongo: ping did not answer ok'));
      });
      socket.write(Buffer.concat([header, document]));
    });

/** Encodes a flat BSON document of int32 and string fields. */
function bsonDocument(fields: Record<string, number | string>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(fields)) {
    const name = Buffer.from(`${key}\0`, 'utf8');
    if (typeof value === 'number') {
      const int = Buffer.alloc(4);
      int.writeInt32LE(value, 0);
      parts.push(Buffer.from([0x10]), name, int);
    } else {
      const text = Buffer.from(`${value}\0`, 'utf8');
      const length = Buffer.alloc(4);
      length.writeInt32LE(text.length, 0);
      parts.push(Buffer.from([0x02]), name, length, text);
    }
  }
  const body = Buffer.concat(parts);
  const size = Buffer.alloc(4);
  size.writeInt32LE(4 + body.length + 1, 0);
  return Buffer.concat([size, body, Buffer.from([0])]);
}
