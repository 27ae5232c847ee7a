import { parse as parseYaml } from 'yaml';

// Generates the edge's nginx configuration from the gateway's declarative file (Kong's shape), so
// the two never disagree: the request size limit and a coarse per-address rate come from the global
// plugins, and the public catalog reads (GET/HEAD routes without the jwt plugin under
// /v1/products) are cached. Fine-grained policy (tokens, per-consumer limits) stays in the gateway.

interface Plugin {
  readonly name?: string;
  readonly enabled?: boolean;
  readonly config?: Record<string, unknown>;
}
interface Route {
  readonly name?: string;
  readonly paths?: readonly string[];
  readonly methods?: readonly string[];
  readonly plugins?: readonly Plugin[];
}
interface Service {
  readonly routes?: readonly Route[];
  readonly plugins?: readonly Plugin[];
}
interface Declarative {
  readonly services?: readonly Service[];
  readonly plugins?: readonly Plugin[];
}

/** What the edge is generated from besides the declarative file. */
export interface EdgeOptions {
  /** The gateway's declarative YAML. */
  readonly declarativeYaml: string;
  /** nginx's prefix directory: pid, temp files and the cache live there. */
  readonly prefix: string;
  readonly listenPort: number;
  /** Gateway instances as `host:port`. */
  readonly upstreams: readonly string[];
  /** TLS listener (self-signed locally), when wanted. */
  readonly tls?: { readonly port: number; readonly certificate: string; readonly key: string };
  /** Values of `${NAME}` in the declarative file, as the gateway receives them. */
  readonly vars?: Readonly<Record<string, string>>;
  /** Public catalog prefixes to cache. Default `/v1/products`. */
  readonly cachedPrefixes?: readonly string[];
}

const sizeUnits: Readonly<Record<string, number>> = {
  bytes: 1,
  kilobytes: 1024,
  megabytes: 1024 * 1024,
};

function enabled(plugins: readonly Plugin[] | undefined, name: string): Plugin | undefined {
  const plugin = plugins?.find((candidate) => candidate.name === name);
  return plugin !== undefined && plugin.enabled !== false ? plugin : undefined;
}

/** `${NAME}` → `vars[NAME]` in every string (unknown names are left as they are). */
function substitute(value: unknown, vars: Readonly<Record<string, string>>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z0-9_]+)\}/g, (match, key: string) => vars[key] ?? match);
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, vars));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, member]) => [key, substitute(member, vars)]),
    );
  }
  return value;
}

/** Body size limit of the global request-size-limiting plugin, in bytes (1 MiB by default). */
export function bodyLimitBytes(declarative: Declarative): number {
  const config = enabled(declarative.plugins, 'request-size-limiting')?.config;
  const size = Number(config?.allowed_payload_size ?? 1);
  const unitName = typeof config?.size_unit === 'string' ? config.size_unit : 'megabytes';
  const unit = sizeUnits[unitName] ?? 1024 * 1024;
  return Math.floor(size * unit);
}

/**
 * A coarse per-address rate for `limit_req`: four times the gateway's global per-second rule (the
 * gateway enforces the exact one, per consumer), 100 r/s when there is none.
 */
export function coarseRatePerSecond(declarative: Declarative): number {
  const second = Number(enabled(declarative.plugins, 'rate-limiting')?.config?.second ?? 25);
  return Number.isFinite(second) ? Math.max(1, Math.round(second * 4)) : 100;
}

/** Route prefixes that are public reads under one of `cachedPrefixes`: safe for a shared cache. */
export function publicReadPrefixes(
  declarative: Declarative,
  cachedPrefixes: readonly string[],
): string[] {
  const result: string[] = [];
  const globalJwt = enabled(declarative.plugins, 'jwt');
  for (const service of declarative.services ?? []) {
    for (const route of service.routes ?? []) {
      const jwt =
        route.plugins?.find((plugin) => plugin.name === 'jwt') ??
        service.plugins?.find((plugin) => plugin.name === 'jwt') ??
        globalJwt;
      const isAuthenticated = jwt !== undefined && jwt.enabled !== false;
      const isReadOnly =
        route.methods !== undefined &&
        route.methods.every((method) => method === 'GET' || method === 'HEAD');
      if (isAuthenticated || !isReadOnly) continue;
      for (const path of route.paths ?? []) {
        if (cachedPrefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) {
          result.push(path);
        }
      }
    }
  }
  return [...new Set(result)].sort();
}

const proxyHeaders = `
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Request-Id $req_id;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 2;
      proxy_pass http://gateway;`;

function serverBlock(listen: string, catalog: readonly string[], isTls: boolean): string {
  const hsts = isTls ? "\n    add_header Strict-Transport-Security 'max-age=31536000' always;" : '';
  const cached = catalog
    .map(
      (path) => `
    location ${path} {
      limit_req zone=per_address burst=200 nodelay;
      proxy_cache catalog;
      proxy_cache_methods GET HEAD;
      proxy_cache_key $scheme$request_method$host$request_uri;
      proxy_cache_valid 200 10s;
      proxy_cache_lock on;
      proxy_cache_use_stale error timeout updating http_502 http_503 http_504;
      proxy_cache_bypass $http_authorization;
      proxy_no_cache $http_authorization;
      add_header X-Cache-Status $upstream_cache_status always;
      ${securityHeaders}${hsts}${proxyHeaders}
    }`,
    )
    .join('\n');
  return `
  server {
    listen ${listen};
    server_name _;
    ${securityHeaders}${hsts}

    # The edge's own refusals speak problem+json like the rest of the API (RFC 9457).
${edgeProblems}

    location = /edge/healthz {
      access_log off;
      default_type text/plain;
      return 200 "ok\\n";
    }
${cached}
    location / {
      limit_req zone=per_address burst=200 nodelay;
      ${proxyHeaders}
    }
  }`;
}

const problemCodes: readonly [number, string, string][] = [
  [413, 'PAYLOAD_TOO_LARGE', 'Payload too large'],
  [429, 'RATE_LIMITED', 'Too many requests'],
  [502, 'UPSTREAM_FAILED', 'Upstream failed'],
  [503, 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  [504, 'UPSTREAM_TIMEOUT', 'Upstream timeout'],
];

const edgeProblems = problemCodes
  .map(([status, code, title]) => {
    const type = `https://bazaar.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`;
    const body = JSON.stringify({ type, title, status, code }).replaceAll("'", "\\'");
    return `    error_page ${status} @problem_${status};
    location @problem_${status} {
      default_type application/problem+json;
      return ${status} '${body}';
    }`;
  })
  .join('\n');

// nginx drops add_header inherited from an outer level when a location adds its own, so cached
// locations repeat them.
const securityHeaders = `add_header X-Content-Type-Options nosniff always;
      add_header X-Frame-Options DENY always;
      add_header Referrer-Policy no-referrer always;
      add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;`;

/** The whole nginx.conf of the edge. */
export function renderEdgeConfig(options: EdgeOptions): string {
  const declarative = substitute(
    parseYaml(options.declarativeYaml) ?? {},
    options.vars ?? {},
  ) as Declarative;
  const catalog = publicReadPrefixes(declarative, options.cachedPrefixes ?? ['/v1/products']);
  const prefix = options.prefix.replace(/\/+$/, '');
  const servers = options.upstreams
    .map((upstream) => `    server ${upstream} max_fails=3 fail_timeout=10s;`)
    .join('\n');
  const tls =
    options.tls === undefined
      ? ''
      : serverBlock(`127.0.0.1:${options.tls.port} ssl`, catalog, true).replace(
          'server_name _;',
          `server_name _;\n    ssl_certificate ${options.tls.certificate};\n    ssl_certificate_key ${options.tls.key};\n    ssl_protocols TLSv1.2 TLSv1.3;`,
        );
  return `# Generated by stack/edge from services/gateway/gateway.yaml; do not edit.
worker_processes 2;
pid ${prefix}/nginx.pid;
error_log stderr warn;

events {
  worker_connections 1024;
}

http {
  default_type application/octet-stream;
  server_tokens off;
  sendfile on;
  keepalive_timeout 60s;
  client_max_body_size ${bodyLimitBytes(declarative)};
  client_body_temp_path ${prefix}/temp/body;
  proxy_temp_path ${prefix}/temp/proxy;
  fastcgi_temp_path ${prefix}/temp/fastcgi;
  uwsgi_temp_path ${prefix}/temp/uwsgi;
  scgi_temp_path ${prefix}/temp/scgi;

  map $http_x_request_id $req_id {
    default $http_x_request_id;
    "" $request_id;
  }

  log_format json escape=json '{"time":"$time_iso8601","remote_addr":"$remote_addr",'
    '"request_id":"$req_id","method":"$request_method","uri":"$request_uri",'
    '"status":$status,"bytes":$body_bytes_sent,"duration_s":$request_time,'
    '"upstream":"$upstream_addr","upstream_s":"$upstream_response_time",'
    '"cache":"$upstream_cache_status","user_agent":"$http_user_agent"}';
  # A file of its own: as an unprivileged user nginx cannot reopen the supervisor's stdout.
  access_log ${prefix}/access.log json buffer=32k flush=1s;

  limit_req_zone $binary_remote_addr zone=per_address:10m rate=${coarseRatePerSecond(declarative)}r/s;
  limit_req_status 429;
  proxy_cache_path ${prefix}/cache/catalog levels=1:2 keys_zone=catalog:10m max_size=100m inactive=10m use_temp_path=off;

  upstream gateway {
${servers}
    keepalive 64;
    keepalive_timeout 55s;
  }
${serverBlock(`127.0.0.1:${options.listenPort}`, catalog, false)}
${tls}
}
`;
}
