import { randomUUID } from 'node:crypto';

/** One request of a steady load and how it ended. */
export interface LoadSample {
  readonly at: number;
  readonly kind: 'read' | 'order';
  readonly status: number;
  /** Set when no HTTP answer came (reset, refused, timeout). */
  readonly error?: string;
}

export interface LoadReport {
  readonly requests: number;
  readonly failures: readonly LoadSample[];
  readonly byKind: Readonly<Record<string, number>>;
}

/** A 5xx, a 429 or no answer at all: what a user would see as a failed request. */
export function isFailure(sample: LoadSample): boolean {
  return sample.error !== undefined || sample.status >= 500 || sample.status === 429;
}

export function summarize(samples: readonly LoadSample[], from = 0): LoadReport {
  const counted = samples.filter((sample) => sample.at >= from);
  const byKind: Record<string, number> = {};
  for (const sample of counted) byKind[sample.kind] = (byKind[sample.kind] ?? 0) + 1;
  return { requests: counted.length, failures: counted.filter(isFailure), byKind };
}

export interface SteadyLoadOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly productId: string;
  /** What readers GET: a route that is not cached at the edge, so it reaches the service. */
  readonly readPath: string;
  /** Closed-loop workers reading the catalog and one order. */
  readonly readers: number;
  /** Closed-loop workers placing orders (each with its own Idempotency-Key). */
  readonly buyers: number;
  /** Pause of each worker between two requests. */
  readonly thinkMs: number;
  /** The load stops by itself after this long, whatever happens to the caller. */
  readonly maxDurationMs: number;
}

export interface SteadyLoad {
  readonly samples: LoadSample[];
  /** Stops the workers and resolves once every request in flight has ended. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A bounded closed-loop load of reads and orders against the cluster's public entry on
 * 127.0.0.1: each worker sends its next request when the previous one has answered.
 */
export function startSteadyLoad(options: SteadyLoadOptions): SteadyLoad {
  const samples: LoadSample[] = [];
  const stopAt = Date.now() + options.maxDurationMs;
  let isStopped = false;
  const auth = { authorization: `Bearer ${options.token}` };

  async function once(kind: LoadSample['kind']): Promise<void> {
    const at = Date.now();
    try {
      const response =
        kind === 'read'
          ? await fetch(`${options.baseUrl}${options.readPath}`, {
              headers: auth,
              signal: AbortSignal.timeout(10_000),
            })
          : await fetch(`${options.baseUrl}/v1/orders`, {
              method: 'POST',
              headers: {
                ...auth,
                'content-type': 'application/json',
                'idempotency-key': randomUUID(),
              },
              body: JSON.stringify({
                items: [{ productId: options.productId, quantity: 1 }],
                payment: { token: 'tok_visa' },
              }),
              signal: AbortSignal.timeout(10_000),
            });
      await response.arrayBuffer();
      samples.push({ at, kind, status: response.status });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      samples.push({ at, kind, status: 0, error: cause ?? (error as Error).name });
    }
  }

  async function worker(kind: LoadSample['kind']): Promise<void> {
    while (!isStopped && Date.now() < stopAt) {
      await once(kind);
      await sleep(options.thinkMs);
    }
  }

  const workers = [
    ...Array.from({ length: options.readers }, () => worker('read')),
    ...Array.from({ length: options.buyers }, () => worker('order')),
  ];
  return {
    samples,
    async stop() {
      isStopped = true;
      await Promise.all(workers);
    },
  };
}
