import { metrics, type Attributes } from '@opentelemetry/api';

/** Options of {@link createElasticsearchShipper}. */
export interface ElasticsearchShipperOptions {
  /** Base URL of Elasticsearch, e.g. `http://127.0.0.1:9200`. */
  readonly url: string;
  /** Daily indices `<prefix>-YYYY.MM.DD`. Default `bazaar-logs`. */
  readonly indexPrefix?: string;
  /** At most this many lines wait in memory; beyond it new lines are dropped (and counted). Default 10,000. */
  readonly maxBufferedLines?: number;
  /** At most this many bytes wait in memory. Default 8 MiB. */
  readonly maxBufferedBytes?: number;
  /** Lines per bulk request. Default 500. */
  readonly batchSize?: number;
  /** How often buffered lines are sent. Default 1000 ms. */
  readonly flushIntervalMs?: number;
  /** Deadline of one bulk request. Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * The index template that gives the daily indices their mappings. Nothing is shipped until it
   * exists: a line indexed before it would create the day's index with guessed (dynamic) mappings,
   * kept until the next day. Default `bazaar-logs`; `false` ships at once.
   */
  readonly indexTemplate?: string | false;
  /** Told when shipping stops or resumes working (default: one line on stderr). */
  readonly onStateChange?: (state: 'failing' | 'recovered', detail: string) => void;
}

/** Counts since the shipper started. */
export interface ShipperStats {
  readonly shipped: number;
  readonly dropped: number;
  readonly buffered: number;
}

/** A pino destination that also ships every line to Elasticsearch. */
export interface ElasticsearchShipper {
  /** pino's destination interface: takes one serialized JSON line. Never blocks, never throws. */
  write(line: string): void;
  /** Sends what is buffered now (one bulk request at a time); resolves when done or failed. */
  flush(): Promise<void>;
  /** Stops the timer and sends what is left, within `timeoutMs` (default 2000); never rejects. */
  close(timeoutMs?: number): Promise<void>;
  stats(): ShipperStats;
}

const METER_NAME = '@bazaar/logging';
const MAX_BACKOFF_MS = 30_000;

/**
 * Ships log lines to Elasticsearch with the bulk API, batched and off the request path:
 * `write` only appends to a bounded in-memory buffer; a timer sends batches, one request at a time.
 * If Elasticsearch is slow or down the service is not affected: failed batches are retried with
 * backoff while they fit in the buffer, and lines that do not fit are dropped and counted
 * (`log_shipping_dropped_total{reason}`), so memory stays bounded whatever happens.
 *
 * Each line gets `@timestamp` (its own `time`) and goes to the daily index of that time,
 * `<indexPrefix>-YYYY.MM.DD`, whose mappings come from the `bazaar-logs` index template
 * (`observability/elasticsearch/index-template.json`).
 *
 * Create it after `startTelemetry` so its counters reach `/metrics`.
 */
export function createElasticsearchShipper(
  options: ElasticsearchShipperOptions,
): ElasticsearchShipper {
  const base = options.url.replace(/\/+$/, '');
  const indexPrefix = options.indexPrefix ?? 'bazaar-logs';
  const maxLines = options.maxBufferedLines ?? 10_000;
  const maxBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const batchSize = options.batchSize ?? 500;
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const indexTemplate = options.indexTemplate ?? 'bazaar-logs';
  const onStateChange =
    options.onStateChange ??
    ((state: string, detail: string) =>
      process.stderr.write(
        `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: `log shipping ${state}`, detail })}\n`,
      ));

  const meter = metrics.getMeter(METER_NAME);
  const shippedCounter = meter.createCounter('log_shipping.shipped', {
    unit: '{record}',
    description: 'Log records Elasticsearch accepted',
  });
  const droppedCounter = meter.createCounter('log_shipping.dropped', {
    unit: '{record}',
    description: 'Log records not shipped: buffer_full, rejected (by Elasticsearch), closed',
  });
  const bufferedGauge = meter.createObservableGauge('log_shipping.buffered', {
    unit: '{record}',
    description: 'Log records waiting to be shipped',
  });

  let buffer: string[] = [];
  let bufferedBytes = 0;
  let shipped = 0;
  let dropped = 0;
  let inFlight: Promise<void> | undefined;
  let failures = 0;
  let retryAt = 0;
  let isClosed = false;
  let hasTemplate = indexTemplate === false;

  const observeBuffered = (result: { observe: (value: number, attributes?: Attributes) => void }) =>
    result.observe(buffer.length);
  bufferedGauge.addCallback(observeBuffered);

  const drop = (count: number, reason: string) => {
    if (count <= 0) return;
    dropped += count;
    droppedCounter.add(count, { reason });
  };

  const toBulk = (line: string): string => {
    const time = /"time":"([^"]+)"/.exec(line)?.[1];
    const date = time === undefined || Number.isNaN(Date.parse(time)) ? new Date() : new Date(time);
    const index = `${indexPrefix}-${date.toISOString().slice(0, 10).replaceAll('-', '.')}`;
    const document = line.trimEnd();
    const withTimestamp = document.startsWith('{')
      ? `{"@timestamp":"${date.toISOString()}",${document.slice(1)}`
      : JSON.stringify({ '@timestamp': date.toISOString(), message: document });
    return `{"create":{"_index":"${index}"}}\n${withTimestamp}\n`;
  };

  /** Whether the index template exists; once seen it is not asked again (templates persist). */
  async function templateExists(batch: string[]): Promise<boolean> {
    if (hasTemplate || indexTemplate === false) return true;
    try {
      const response = await fetch(`${base}/_index_template/${indexTemplate}`, {
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      await response.body?.cancel();
      if (response.ok) {
        hasTemplate = true;
        return true;
      }
      requeue(
        batch,
        response.status === 404
          ? `index template ${indexTemplate} is not installed yet`
          : `HTTP ${response.status} asking for index template ${indexTemplate}`,
      );
    } catch (error) {
      requeue(batch, `unreachable: ${(error as Error).message}`);
    }
    return false;
  }

  async function send(batch: string[]): Promise<void> {
    if (!(await templateExists(batch))) return;
    const body = batch.map(toBulk).join('');
    let response: Response;
    try {
      response = await fetch(`${base}/_bulk`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body,
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
    } catch (error) {
      requeue(batch, `unreachable: ${(error as Error).message}`);
      return;
    }
    const text = await response.text().catch(() => '');
    if (response.status === 429 || response.status >= 500) {
      requeue(batch, `HTTP ${response.status}`);
      return;
    }
    if (!response.ok) {
      drop(batch.length, 'rejected');
      succeeded();
      return;
    }
    let result: { errors?: boolean; items?: { create?: { status?: number } }[] } = {};
    try {
      result = JSON.parse(text) as typeof result;
    } catch {
      // A 2xx without a JSON body: count the batch as shipped.
    }
    const retry: string[] = [];
    let rejected = 0;
    if (result.errors === true && result.items !== undefined) {
      result.items.forEach((item, i) => {
        const status = item.create?.status ?? 200;
        const line = batch[i];
        if (status === 429 && line !== undefined) retry.push(line);
        else if (status >= 300) rejected += 1;
      });
    }
    const accepted = batch.length - retry.length - rejected;
    shipped += accepted;
    shippedCounter.add(accepted);
    drop(rejected, 'rejected');
    if (retry.length > 0) requeue(retry, 'HTTP 429 on some records');
    else succeeded();
  }

  function succeeded() {
    if (failures > 0) onStateChange('recovered', `after ${failures} failed attempt(s)`);
    failures = 0;
    retryAt = 0;
  }

  // A failed batch goes back to the front while it fits; what does not fit is dropped.
  function requeue(batch: string[], detail: string) {
    if (failures === 0) onStateChange('failing', detail);
    failures += 1;
    retryAt = Date.now() + Math.min(flushIntervalMs * 2 ** failures, MAX_BACKOFF_MS);
    if (isClosed) {
      drop(batch.length, 'closed');
      return;
    }
    const room = Math.max(0, maxLines - buffer.length);
    const kept = batch.slice(0, room);
    drop(batch.length - kept.length, 'buffer_full');
    buffer = [...kept, ...buffer];
    bufferedBytes += kept.reduce((sum, line) => sum + line.length, 0);
  }

  function flush(): Promise<void> {
    if (inFlight !== undefined) return inFlight;
    if (buffer.length === 0 || Date.now() < retryAt) return Promise.resolve();
    const batch = buffer.splice(0, batchSize);
    bufferedBytes -= batch.reduce((sum, line) => sum + line.length, 0);
    inFlight = send(batch).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  const timer = setInterval(() => {
    void flush().then(() => (buffer.length >= batchSize ? flush() : undefined));
  }, flushIntervalMs);
  timer.unref();

  return {
    write(line: string) {
      if (isClosed) {
        drop(1, 'closed');
        return;
      }
      if (buffer.length >= maxLines || bufferedBytes + line.length > maxBytes) {
        drop(1, 'buffer_full');
        return;
      }
      buffer.push(line);
      bufferedBytes += line.length;
      if (buffer.length >= batchSize && inFlight === undefined && Date.now() >= retryAt)
        void flush();
    },
    flush,
    async close(timeoutMs = 2000) {
      if (isClosed) return;
      clearInterval(timer);
      const deadline = Date.now() + timeoutMs;
      retryAt = 0;
      while (Date.now() < deadline && (buffer.length > 0 || inFlight !== undefined)) {
        const before = buffer.length;
        await Promise.race([
          flush(),
          new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()),
        ]);
        // Elasticsearch is failing: stop trying, the deadline is for a final flush only.
        if (failures > 0 && buffer.length >= before) break;
      }
      isClosed = true;
      drop(buffer.length, 'closed');
      buffer = [];
      bufferedBytes = 0;
      bufferedGauge.removeCallback(observeBuffered);
    },
    stats: () => ({ shipped, dropped, buffered: buffer.length }),
  };
}
