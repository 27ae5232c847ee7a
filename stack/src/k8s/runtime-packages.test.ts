import { describe, expect, it } from 'vitest';
import {
  externalImports,
  packageClosure,
  packageNameOf,
  resolvePackage,
  type Manifest,
  type ManifestReader,
} from './runtime-packages';

/** An installed tree as a map of package directory → manifest. */
function tree(packages: Record<string, Manifest>): ManifestReader {
  return (dir) => packages[dir];
}

describe('packageNameOf', () => {
  it('names the package of bare, scoped and deep specifiers', () => {
    expect(packageNameOf('fastify')).toBe('fastify');
    expect(packageNameOf('pino/file')).toBe('pino');
    expect(packageNameOf('@opentelemetry/api')).toBe('@opentelemetry/api');
    expect(packageNameOf('@duckdb/node-api/lib/x.js')).toBe('@duckdb/node-api');
  });

  it('ignores built-ins and paths', () => {
    expect(packageNameOf('node:fs')).toBeUndefined();
    expect(packageNameOf('fs/promises')).toBeUndefined();
    expect(packageNameOf('./local.js')).toBeUndefined();
    expect(packageNameOf('/abs/path.js')).toBeUndefined();
  });
});

describe('resolvePackage', () => {
  const read = tree({
    'node_modules/jose': {},
    'services/gateway/node_modules/jose': {},
    'node_modules/a': {},
    'node_modules/a/node_modules/b': {},
  });

  it('takes the nearest node_modules upwards, as Node does', () => {
    expect(resolvePackage('jose', 'services/gateway/dist', read)).toBe(
      'services/gateway/node_modules/jose',
    );
    expect(resolvePackage('jose', 'services/orders/dist', read)).toBe('node_modules/jose');
    expect(resolvePackage('b', 'node_modules/a', read)).toBe('node_modules/a/node_modules/b');
  });

  it('never looks in node_modules/node_modules, nor finds what is not installed', () => {
    expect(resolvePackage('b', 'node_modules', read)).toBeUndefined();
    expect(resolvePackage('b', 'services/orders/dist', read)).toBeUndefined();
  });
});

describe('packageClosure', () => {
  it('walks dependencies, installed optional ones and required peers', () => {
    const read = tree({
      'node_modules/app-dep': {
        dependencies: { shared: '^1' },
        optionalDependencies: { 'native-linux': '1', 'native-darwin': '1' },
        peerDependencies: { peer: '*', 'optional-peer': '*' },
        peerDependenciesMeta: { 'optional-peer': { optional: true } },
      },
      'node_modules/shared': { dependencies: { leaf: '1' } },
      'node_modules/leaf': {},
      'node_modules/native-linux': {},
      'node_modules/peer': {},
      'node_modules/optional-peer': {},
      'node_modules/unrelated': {},
    });
    const closure = packageClosure([{ name: 'app-dep', from: 'services/x/dist' }], read);
    expect(closure.packages).toEqual([
      'node_modules/app-dep',
      'node_modules/leaf',
      'node_modules/native-linux',
      'node_modules/peer',
      'node_modules/shared',
    ]);
    expect(closure.missing).toEqual([]);
  });

  it('keeps the version npm nested beside its dependent', () => {
    const read = tree({
      'node_modules/a': { dependencies: { b: '^2' } },
      'node_modules/a/node_modules/b': {},
      'node_modules/b': {},
    });
    expect(packageClosure([{ name: 'a', from: 'dist' }], read).packages).toEqual([
      'node_modules/a',
      'node_modules/a/node_modules/b',
    ]);
  });

  it('reports a required package that is missing, but not an optional one', () => {
    const read = tree({
      'node_modules/a': { dependencies: { gone: '1' }, optionalDependencies: { maybe: '1' } },
    });
    const closure = packageClosure(
      [
        { name: 'a', from: 'dist' },
        { name: 'absent', from: 'dist' },
        { name: 'tried', from: 'dist', isOptional: true },
      ],
      read,
    );
    expect(closure.packages).toEqual(['node_modules/a']);
    expect(closure.missing).toEqual([
      { name: 'absent', from: 'dist' },
      { name: 'gone', from: 'node_modules/a' },
    ]);
  });

  it('treats a dependency npm also lists as optional as optional', () => {
    const read = tree({
      'node_modules/a': { dependencies: { maybe: '1' }, optionalDependencies: { maybe: '1' } },
    });
    expect(packageClosure([{ name: 'a', from: '' }], read).missing).toEqual([]);
  });
});

describe('externalImports', () => {
  it('finds static imports, literal requires and dynamic imports of a bundle', async () => {
    const code = [
      "import { createRequire } from 'node:module';",
      "import fastify from 'fastify';",
      "export * from '@scope/pkg/sub';",
      // The bundle's banner: bundled CommonJS requires through it, by esbuild's __require shim.
      'const require = createRequire(import.meta.url);',
      'var __require = (x) => require(x);',
      'const pg = __require("pg");',
      "const later = () => import('ioredis');",
      'const computed = (name) => __require(name);',
      'export { fastify, pg, later, computed };',
    ].join('\n');
    const found = await externalImports(code);
    expect(found).toEqual([
      { specifier: '@scope/pkg/sub', kind: 'import-statement' },
      { specifier: 'fastify', kind: 'import-statement' },
      { specifier: 'ioredis', kind: 'dynamic-import' },
      { specifier: 'node:module', kind: 'import-statement' },
      { specifier: 'pg', kind: 'require-call' },
    ]);
  });
});
