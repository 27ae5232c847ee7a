import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  allImageNames,
  clusterEdgeConfig,
  debianMirror,
  imageTag,
  mergeImages,
  parseImagesArgs,
  recipeKey,
  renderImageValues,
  SERVICE_IMAGE_BUDGET_BYTES,
  selectImages,
  sizeTable,
  type BuiltImage,
} from './images';

const services = ['gateway', 'orders'];

describe('parseImagesArgs', () => {
  it('reads every option, in both spellings', () => {
    expect(parseImagesArgs([])).toEqual({ push: false });
    expect(
      parseImagesArgs(['--push', '--base', 'node:20-bookworm-slim', '--registry=10.0.0.1:5000']),
    ).toEqual({ push: true, base: 'node:20-bookworm-slim', registry: '10.0.0.1:5000' });
    expect(parseImagesArgs(['--only', 'orders, edge,'])).toEqual({
      push: false,
      only: ['orders', 'edge'],
    });
  });

  it('refuses an unknown argument and a missing value', () => {
    expect(() => parseImagesArgs(['--pushh'])).toThrow(/unknown argument "--pushh"/);
    expect(() => parseImagesArgs(['--base'])).toThrow(/--base needs a value/);
    expect(() => parseImagesArgs(['--only', '--push'])).toThrow(/--only needs a value/);
  });
});

describe('selectImages', () => {
  const all = allImageNames(services);

  it('builds services, the edge, then the infrastructure', () => {
    expect(all).toEqual([
      'gateway',
      'orders',
      'edge',
      'postgres',
      'mongo',
      'redis',
      'rabbitmq',
      'mail',
    ]);
    expect(selectImages(all, undefined)).toEqual(all);
  });

  it('keeps the build order whatever the order asked, and refuses unknown names', () => {
    expect(selectImages(all, ['mail', 'orders'])).toEqual(['orders', 'mail']);
    expect(() => selectImages(all, ['order'])).toThrow(/unknown image\(s\): order/);
  });
});

describe('imageTag and recipeKey', () => {
  it('marks a tag built from a dirty tree', () => {
    expect(imageTag('0123456789ab', false)).toBe('0123456789ab');
    expect(imageTag('0123456789ab', true)).toBe('0123456789ab-dirty');
  });

  it('keys a recipe by its content', () => {
    const recipe = { packages: ['redis-server'], script: 'a' };
    expect(recipeKey(recipe)).toBe(recipeKey({ packages: ['redis-server'], script: 'a' }));
    expect(recipeKey(recipe)).not.toBe(recipeKey({ packages: ['redis-server'], script: 'b' }));
    expect(recipeKey(recipe)).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('debianMirror', () => {
  it('reads a deb822 stanza for the suite, not the security one', () => {
    const sources = [
      'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
      '# snapshot\nTypes: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n',
    ];
    expect(debianMirror(sources)).toBe('http://mirror.example/debian');
  });

  it('reads one-line entries, options and comments included, and skips disabled stanzas', () => {
    expect(
      debianMirror([
        '# deb http://old.example/debian bookworm main\ndeb [signed-by=/k.gpg] http://one.example/debian bookworm main',
      ]),
    ).toBe('http://one.example/debian');
    expect(
      debianMirror(['Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm']),
    ).toBeUndefined();
    expect(debianMirror(['deb http://other.example/ubuntu jammy main'])).toBeUndefined();
  });
});

describe('clusterEdgeConfig', () => {
  const gatewayYaml = `
_format_version: '3.0'
plugins:
  - name: rate-limiting
    config: { second: '\${GATEWAY_RATE_PER_SECOND}' }
services:
  - name: orders
    routes:
      - name: products
        paths: [/v1/products]
        methods: [GET]
`;
  const conf = clusterEdgeConfig(gatewayYaml);

  it('listens on every address of the pod and proxies to the gateway Service', () => {
    expect(conf).toContain('listen 8080;');
    expect(conf).toContain('server gateway:8080 ');
    expect(conf).not.toContain('127.0.0.1');
  });

  it('writes only under /tmp and logs to the standard streams', () => {
    expect(conf).toContain('pid /tmp/nginx/nginx.pid;');
    expect(conf).toContain('access_log /dev/stdout json');
    expect(conf).toContain('error_log stderr');
    const paths = [...conf.matchAll(/_path (\S+)/g)].map((match) => match[1]);
    expect(paths.length).toBeGreaterThan(0);
    for (const written of paths) expect(written).toMatch(/^\/tmp\/nginx\//);
  });

  it("derives the coarse rate from the cluster's gateway limits", () => {
    expect(conf).toContain('rate=4000r/s');
  });
});

const image = (name: string, extra: Partial<BuiltImage> = {}): BuiltImage => ({
  name,
  ref: `127.0.0.1:5000/bazaar/${name}:abc`,
  sizeBytes: 100 * 1024 * 1024,
  ...extra,
});

describe('renderImageValues', () => {
  it('puts services and the edge under components, the rest under infra, digests when pushed', () => {
    const values = parseYaml(
      renderImageValues(
        '127.0.0.1:5000',
        [image('orders', { digest: 'sha256:1' }), image('edge'), image('postgres')],
        services,
      ),
    ) as unknown;
    expect(values).toEqual({
      image: { registry: '127.0.0.1:5000' },
      components: {
        edge: { image: { repository: 'bazaar/edge', tag: 'abc' } },
        orders: { image: { repository: 'bazaar/orders', tag: 'abc', digest: 'sha256:1' } },
      },
      infra: { postgres: { image: { repository: 'bazaar/postgres', tag: 'abc' } } },
    });
  });
});

describe('mergeImages', () => {
  it("replaces this run's images and keeps the others of the same registry", () => {
    const previous = [
      image('orders', { digest: 'sha256:old' }),
      image('gateway', { digest: 'sha256:g' }),
      { ...image('users'), ref: 'elsewhere:5000/bazaar/users:abc' },
    ];
    const merged = mergeImages(
      previous,
      [image('orders', { digest: 'sha256:new' })],
      '127.0.0.1:5000',
    );
    expect(merged.map((entry) => [entry.name, entry.digest])).toEqual([
      ['gateway', 'sha256:g'],
      ['orders', 'sha256:new'],
    ]);
  });
});

describe('sizeTable', () => {
  it('marks a service image over the budget, and not an infrastructure image', () => {
    const lines = sizeTable(
      [
        image('orders', { sizeBytes: SERVICE_IMAGE_BUDGET_BYTES + 1 }),
        image('gateway'),
        image('postgres', { sizeBytes: SERVICE_IMAGE_BUDGET_BYTES * 2 }),
      ],
      services,
    );
    expect(lines[0]).toMatch(/^IMAGE\s+SIZE\s+BUDGET\s+REF$/);
    expect(lines[1]).toMatch(/^orders\s+250\.0 MB\s+OVER 250 MB/);
    expect(lines[2]).toMatch(/^gateway\s+100\.0 MB\s+ok/);
    expect(lines[3]).toMatch(/^postgres\s+500\.0 MB\s+-/);
  });
});
