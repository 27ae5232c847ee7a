import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** contracts/events, where the schemas and the AsyncAPI document live. */
export const eventsDir = fileURLToPath(new URL('../../../contracts/events/', import.meta.url));

/** One `<type>.schema.json` file, parsed. */
export interface EventSchemaFile {
  readonly type: string;
  readonly schema: {
    readonly title: string;
    readonly properties: Record<string, unknown>;
    readonly $defs: Record<string, { readonly required: readonly string[] }>;
    readonly examples?: readonly Record<string, unknown>[];
  };
}

/** Every event schema of contracts/events, sorted by type. */
export const eventSchemaFiles: readonly EventSchemaFile[] = readdirSync(eventsDir)
  .filter((name) => /\.v[1-9][0-9]*\.schema\.json$/.test(name))
  .sort()
  .map((name) => ({
    type: name.replace(/\.schema\.json$/, ''),
    schema: JSON.parse(readFileSync(eventsDir + name, 'utf8')) as EventSchemaFile['schema'],
  }));

/** The first example of an event schema, deep-copied so a test can change it. */
export function exampleOf(
  type: string,
): Record<string, unknown> & { data: Record<string, unknown> } {
  const example = eventSchemaFiles.find((file) => file.type === type)?.schema.examples?.[0];
  if (example === undefined) throw new Error(`${type} has no example`);
  return structuredClone(example) as Record<string, unknown> & { data: Record<string, unknown> };
}
