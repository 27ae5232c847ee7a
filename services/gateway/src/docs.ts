import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

type OpenApiDocument = {
  paths?: Record<string, unknown>;
  components?: Record<string, Record<string, unknown>>;
};

/** `./components.yaml#/x` → `#/x`: the shared components are merged into the one document. */
function localiseRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(localiseRefs);
  if (typeof value !== 'object' || value === null) return value;
  const result: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    result[key] =
      key === '$ref' && typeof member === 'string'
        ? member.replace(/^\.\/[A-Za-z0-9._-]+\.ya?ml#/, '#')
        : localiseRefs(member);
  }
  return result;
}

/**
 * One OpenAPI 3.1 document for the public API: the paths of every `*.openapi.yaml` in `dir` that a
 * gateway route exposes (by prefix), with the components of every file (and `components.yaml`)
 * merged; the first definition of a name wins. Files that do not exist yet are simply absent.
 */
export function aggregateOpenApi(dir: string, routePrefixes: readonly string[]): object {
  const paths: Record<string, unknown> = {};
  const components: Record<string, Record<string, unknown>> = {};
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((file) => file.endsWith('.openapi.yaml') || file === 'components.yaml')
        .sort()
    : [];
  const isExposed = (apiPath: string) =>
    routePrefixes.some(
      (prefix) =>
        apiPath === prefix ||
        apiPath.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`) ||
        prefix === '/',
    );
  for (const file of files) {
    const document = localiseRefs(
      parseYaml(readFileSync(path.join(dir, file), 'utf8')),
    ) as OpenApiDocument;
    for (const [apiPath, item] of Object.entries(document.paths ?? {})) {
      if (isExposed(apiPath) && !(apiPath in paths)) paths[apiPath] = item;
    }
    for (const [section, members] of Object.entries(document.components ?? {})) {
      const merged = (components[section] ??= {});
      for (const [name, member] of Object.entries(members)) merged[name] ??= member;
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Bazaar public API',
      version: '1.0.0',
      description: 'Every public route of the gateway, merged from contracts/http.',
    },
    paths,
    components,
  };
}
