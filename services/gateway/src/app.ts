import { AppError, isAppError } from '@bazaar/errors';
import type { Logger } from '@bazaar/logging';
import type { Discovery, InstanceWatch } from '@bazaar/registry';
import { createApp, type ReadinessCheck } from '@bazaar/service-kit';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { Agent } from 'undici';
import type { Config } from './config';
import {
  ALL_METHODS,
  effectivePlugins,
  type DeclarativeConfig,
  type HttpMethod,
  type PluginConfig,
  type RouteSpec,
  type ServiceSpec,
} from './declarative';
import { aggregateOpenApi } from './docs';
import { createTokenVerifier, type Identity, type VerifyToken } from './jwt.plugin';
import { proxyRequest, type ProxyDeps } from './proxy';
import { createRateLimiter, type CheckRateLimit, type RateLimiter } from './rate-limit.plugin';
import { Upstream } from './upstream';

/** What the gateway is built from; `main.ts` passes the real ones, tests their own. */
export interface GatewayDeps {
  readonly config: Pick<
    Config,
    'REQUEST_TIMEOUT_MS' | 'BODY_LIMIT_BYTES' | 'GATEWAY_CONTRACTS_DIR' | 'GATEWAY_TRUSTED_PROXIES'
  >;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly declarative: DeclarativeConfig;
  /** Where upstream instances come from (services without fixed `targets`). */
  readonly discovery: Discovery | undefined;
  /** Needed when a rate-limiting plugin is configured. */
  readonly redis: Redis | undefined;
}

export interface Gateway {
  readonly app: FastifyInstance;
  /** Stops watches and closes upstream connections (the app is closed by its owner). */
  close(): Promise<void>;
}

const sizeUnits = { bytes: 1, kilobytes: 1024, megabytes: 1024 * 1024 } as const;

function bodyLimitOf(config: PluginConfig<'request-size-limiting'>): number {
  return Math.floor(config.allowed_payload_size * sizeUnits[config.size_unit]);
}

/** Registration URLs for a Kong prefix: the prefix itself and everything below it. */
function urlsOf(prefix: string): string[] {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return base === '' ? ['/', '/*'] : [base, `${base}/*`];
}

function isOriginAllowed(config: PluginConfig<'cors'>, origin: string): boolean {
  return config.origins.includes('*') || config.origins.includes(origin);
}

function applyCors(
  config: PluginConfig<'cors'>,
  request: FastifyRequest,
  reply: FastifyReply,
): boolean {
  const origin = request.headers.origin;
  if (origin === undefined || !isOriginAllowed(config, origin)) return false;
  const wildcard = config.origins.includes('*') && !config.credentials;
  reply.header('access-control-allow-origin', wildcard ? '*' : origin);
  if (!wildcard) reply.header('vary', 'Origin');
  if (config.credentials) reply.header('access-control-allow-credentials', 'true');
  const isPreflight =
    request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
  if (isPreflight) {
    reply.header('access-control-allow-methods', config.methods.join(', '));
    reply.header('access-control-allow-headers', config.headers.join(', '));
    reply.header('access-control-max-age', String(config.max_age));
  } else if (config.exposed_headers.length > 0) {
    reply.header('access-control-expose-headers', config.exposed_headers.join(', '));
  }
  return isPreflight;
}

/**
 * The client's address: the peer's, unless the peer is a trusted proxy (the edge), then the
 * rightmost `X-Forwarded-For` entry that is not a trusted proxy (entries further left are the
 * client's to forge).
 */
export function clientAddressOf(
  peer: string,
  forwardedFor: string | string[] | undefined,
  trusted: ReadonlySet<string>,
): string {
  if (!trusted.has(peer) || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i];
    if (hop !== undefined && !trusted.has(hop)) return hop;
  }
  return peer;
}

/**
 * Calls `onGone` when the client disconnects: before its request body was complete, or before our
 * answer was fully written (a GET's request 'close' alone also fires once its body is read).
 */
function watchClient(request: FastifyRequest, reply: FastifyReply, onGone: () => void) {
  const onRequestClose = () => {
    if (!reply.sent && !request.raw.complete) onGone();
  };
  const onReplyClose = () => {
    if (!reply.raw.writableFinished) onGone();
  };
  request.raw.once('close', onRequestClose);
  reply.raw.once('close', onReplyClose);
  return () => {
    request.raw.removeListener('close', onRequestClose);
    reply.raw.removeListener('close', onReplyClose);
  };
}

function setRateLimitHeaders(
  reply: FastifyReply,
  verdict: { limit: number; remaining: number; resetSeconds: number },
): void {
  // draft-ietf-httpapi-ratelimit-headers
  reply.header('ratelimit-limit', String(verdict.limit));
  reply.header('ratelimit-remaining', String(verdict.remaining));
  reply.header('ratelimit-reset', String(verdict.resetSeconds));
}

/**
 * Builds the gateway: one fastify route per Kong route path (prefix match; the service-kit answers
 * unknown routes with 404 ROUTE_NOT_FOUND), each running its plugin chain — CORS, JWT, rate limiting
 * (request size is the route's body limit) — then proxying to an instance of its service. Resolves
 * once every service's initial instance set is known.
 */
export async function buildGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, logger, telemetry, declarative, discovery, redis } = deps;
  const readinessChecks: ReadinessCheck[] =
    redis === undefined ? [] : [{ name: 'redis', check: () => redis.ping() }];
  // Every proxied route has its own deadline (read_timeout, retries included), which answers 504
  // UPSTREAM_TIMEOUT; the kit's per-request handler timer would only duplicate it.
  const app = createApp({ config, logger, telemetry, readinessChecks, handlerTimeout: false });
  // Bodies are forwarded as they came, whatever their type; buffering (within the body limit) is
  // what lets an idempotent request be retried on another instance.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });

  const attempts = telemetry.meter.createHistogram('gateway.upstream.request.duration', {
    unit: 's',
    description: 'Duration of each attempt of the gateway on an upstream instance.',
  });
  const watches: InstanceWatch[] = [];
  const agents: Agent[] = [];
  const verifiers = new Map<string, VerifyToken>();
  const trustedProxies = new Set(config.GATEWAY_TRUSTED_PROXIES);
  const limiter: RateLimiter | undefined =
    redis === undefined ? undefined : createRateLimiter(redis, logger);

  async function upstreamOf(service: ServiceSpec): Promise<ProxyDeps> {
    const upstream = new Upstream({
      algorithm: service.algorithm,
      ejectAfterFailures: service.passive_health.failures,
      ejectCooldownMs: service.passive_health.cooldown_ms,
      breakerFailures: service.circuit_breaker.failures,
      breakerOpenMs: service.circuit_breaker.open_ms,
    });
    if (service.targets !== undefined) {
      upstream.setInstances(service.targets.map((address) => ({ id: address, address })));
    } else {
      if (discovery === undefined) {
        throw new Error(`service "${service.name}" needs discovery (or fixed targets)`);
      }
      const watch = await discovery.watch(service.host ?? service.name);
      watches.push(watch);
      upstream.setInstances(watch.instances());
      watch.onChange((instances) => upstream.setInstances(instances));
    }
    const agent = new Agent({
      connect: { timeout: service.connect_timeout },
      keepAliveTimeout: 30_000,
      connections: 256,
    });
    agents.push(agent);
    return { upstream, agent, tracer: telemetry.tracer, attempts };
  }

  function registerRoute(service: ServiceSpec, route: RouteSpec, proxy: ProxyDeps): void {
    const plugins = effectivePlugins(declarative, service, route);
    const pluginOf = <N extends (typeof plugins)[number]['name']>(name: N) =>
      plugins.find((plugin) => plugin.name === name) as
        Extract<(typeof plugins)[number], { name: N }> | undefined;
    const cors = pluginOf('cors')?.config;
    const jwt = pluginOf('jwt')?.config;
    const rateLimit = pluginOf('rate-limiting')?.config;
    const sizeLimit = pluginOf('request-size-limiting')?.config;
    let checkRate: CheckRateLimit | undefined;
    if (rateLimit !== undefined) {
      if (limiter === undefined) {
        throw new Error(`route "${route.name}" has rate limiting but no REDIS_URL is configured`);
      }
      checkRate = limiter.forRule(route.name, rateLimit);
    }
    let verify: VerifyToken | undefined;
    if (jwt !== undefined) {
      const key = JSON.stringify(jwt);
      verify = verifiers.get(key) ?? createTokenVerifier(jwt, declarative.consumers);
      verifiers.set(key, verify);
    }
    const methods: readonly HttpMethod[] = route.methods ?? ALL_METHODS;
    const registered = new Set<HttpMethod>(methods);
    if (cors !== undefined) registered.add('OPTIONS');
    const timeoutMs = route.read_timeout ?? service.read_timeout;
    const servicePath = service.path.endsWith('/') ? service.path.slice(0, -1) : service.path;

    for (const prefix of route.paths) {
      const handler = async (request: FastifyRequest, reply: FastifyReply) => {
        if (cors !== undefined && applyCors(cors, request, reply)) {
          return reply.status(204).send();
        }
        if (!methods.includes(request.method as HttpMethod)) {
          throw new AppError('METHOD_NOT_ALLOWED', `${request.method} is not allowed here.`);
        }
        // No await (no microtask) on routes without the jwt plugin.
        const identity: Identity | undefined =
          verify === undefined ? undefined : await verify(request.headers.authorization);
        const clientIp = clientAddressOf(
          request.ip,
          request.headers['x-forwarded-for'],
          trustedProxies,
        );
        if (rateLimit !== undefined && checkRate !== undefined) {
          const subject = identity?.consumer?.username ?? identity?.subject;
          const key =
            rateLimit.limit_by === 'consumer' && subject !== undefined
              ? `c:${subject}`
              : `ip:${clientIp}`;
          try {
            const verdict = await checkRate(key);
            if (verdict !== undefined) setRateLimitHeaders(reply, verdict);
          } catch (error) {
            if (isAppError(error, 'RATE_LIMITED')) {
              const details = error.details as { limit: number; resetSeconds: number };
              setRateLimitHeaders(reply, { ...details, remaining: 0 });
            }
            throw error;
          }
        }
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
        const rawPath = request.url.slice(0, request.url.length - query.length);
        const stripped = route.strip_path
          ? rawPath.slice(prefix.replace(/\/$/, '').length)
          : rawPath;
        const upstreamPath =
          `${servicePath}${stripped.startsWith('/') || stripped === '' ? '' : '/'}${stripped}` ||
          '/';
        const identityHeaders: Record<string, string> = {};
        if (identity !== undefined) {
          identityHeaders['x-authenticated-userid'] = identity.subject;
          if (identity.consumer !== undefined) {
            identityHeaders['x-consumer-id'] = identity.consumer.custom_id;
            identityHeaders['x-consumer-username'] = identity.consumer.username;
          }
        }
        const response = await proxyRequest(proxy, {
          routeName: route.name,
          serviceName: service.name,
          method: request.method as HttpMethod,
          path: `${upstreamPath === '' ? '/' : upstreamPath}${query}`,
          headers: request.headers,
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
          clientIp: request.ip,
          protocol: request.protocol,
          requestId: request.id,
          identityHeaders,
          timeoutMs,
          retries: service.retries,
          watchClient: (onGone) => watchClient(request, reply, onGone),
        });
        return reply.status(response.statusCode).headers(response.headers).send(response.body);
      };
      for (const url of urlsOf(prefix)) {
        app.route({
          method: [...registered],
          url,
          handler,
          ...(sizeLimit === undefined ? {} : { bodyLimit: bodyLimitOf(sizeLimit) }),
        });
      }
    }
  }

  for (const service of declarative.services) {
    const proxy = await upstreamOf(service);
    for (const route of service.routes) registerRoute(service, route, proxy);
  }

  const prefixes = declarative.services.flatMap((service) =>
    service.routes.flatMap((route) => route.paths),
  );
  const docs = aggregateOpenApi(config.GATEWAY_CONTRACTS_DIR, prefixes);
  app.get('/docs', () => docs);

  return {
    app,
    async close() {
      await Promise.allSettled(watches.map((watch) => watch.close()));
      await Promise.allSettled(agents.map((agent) => agent.close()));
    },
  };
}
