// GET /v1/analytics/* — admin only; every route takes a validated [from, to) range.
import { requireRole, type VerifyAccessToken } from '@bazaar/auth';
import type { FastifyInstance } from 'fastify';
import {
  MAX_BUCKETS,
  MAX_TOP_PRODUCTS,
  bucketCount,
  conversionRate,
  parseRange,
} from './analytics-query';
import { invalidFields } from './errors';
import type { Interval, TimeRange, Warehouse } from './warehouse';

export interface AnalyticsRouteDeps {
  readonly warehouse: Warehouse;
  readonly verify: VerifyAccessToken;
  readonly now?: () => Date;
}

interface RangeQuery {
  from?: string | undefined;
  to?: string | undefined;
}

const rangeProperties = {
  from: { type: 'string', maxLength: 64 },
  to: { type: 'string', maxLength: 64 },
} as const;

const rangeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: rangeProperties,
} as const;

function rangeOut(range: TimeRange) {
  return { from: range.from.toISOString(), to: range.to.toISOString() };
}

export function registerAnalyticsRoutes(app: FastifyInstance, deps: AnalyticsRouteDeps): void {
  const { warehouse, verify, now = () => new Date() } = deps;
  const adminOnly = requireRole(verify, 'admin');

  function rangeOf(query: RangeQuery): TimeRange {
    const parsed = parseRange(query, now());
    if (!parsed.ok) throw invalidFields(parsed.errors);
    return parsed.range;
  }

  app.get<{ Querystring: RangeQuery }>(
    '/v1/analytics/summary',
    { onRequest: adminOnly, schema: { querystring: rangeQuerySchema } },
    async (request) => {
      const range = rangeOf(request.query);
      const summary = await warehouse.summary(range);
      return {
        ...rangeOut(range),
        ...summary,
        conversionRate: conversionRate(summary.ordersPlaced, summary.ordersConfirmed),
      };
    },
  );

  app.get<{ Querystring: RangeQuery & { interval?: Interval } }>(
    '/v1/analytics/orders/timeseries',
    {
      onRequest: adminOnly,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...rangeProperties, interval: { type: 'string', enum: ['hour', 'day'] } },
        },
      },
    },
    async (request) => {
      const interval = request.query.interval ?? 'hour';
      // Without `from`, a series starts 24 hours (or 30 days) before `to`, not at the epoch.
      const to = rangeOf({ to: request.query.to }).to;
      const span = interval === 'hour' ? 24 * 3_600_000 : 30 * 86_400_000;
      const range = rangeOf({
        from: request.query.from ?? new Date(to.getTime() - span).toISOString(),
        to: to.toISOString(),
      });
      const buckets = bucketCount(range, interval);
      if (buckets > MAX_BUCKETS) {
        throw invalidFields([
          {
            path: '/querystring/from',
            message: `the range spans ${buckets} ${interval}s; at most ${MAX_BUCKETS} per request`,
          },
        ]);
      }
      return {
        ...rangeOut(range),
        interval,
        items: await warehouse.ordersOverTime(range, interval),
      };
    },
  );

  app.get<{ Querystring: RangeQuery }>(
    '/v1/analytics/conversion',
    { onRequest: adminOnly, schema: { querystring: rangeQuerySchema } },
    async (request) => {
      const range = rangeOf(request.query);
      const conversion = await warehouse.conversion(range);
      return {
        ...rangeOut(range),
        ...conversion,
        rate: conversionRate(conversion.placed, conversion.confirmed),
      };
    },
  );

  app.get<{ Querystring: RangeQuery }>(
    '/v1/analytics/cancellations',
    { onRequest: adminOnly, schema: { querystring: rangeQuerySchema } },
    async (request) => {
      const range = rangeOf(request.query);
      return { ...rangeOut(range), items: await warehouse.cancellations(range) };
    },
  );

  app.get<{ Querystring: RangeQuery & { limit?: number } }>(
    '/v1/analytics/top-products',
    {
      onRequest: adminOnly,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...rangeProperties,
            limit: { type: 'integer', minimum: 1, maximum: MAX_TOP_PRODUCTS },
          },
        },
      },
    },
    async (request) => {
      const range = rangeOf(request.query);
      const limit = request.query.limit ?? 10;
      return { ...rangeOut(range), items: await warehouse.topProducts(range, limit) };
    },
  );
}
