import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@bazaar/stack';
import { testStack } from '@bazaar/testing';
import { describe, expect, it } from 'vitest';

// Grafana cannot run here, so the dashboards are checked where they can fail: every panel query is
// sent to the test stack's live Prometheus (with Grafana's variables filled in the way Grafana
// would) and must be accepted, and every panel is well-formed.

const dir = path.join(repoRoot, 'observability', 'grafana');

interface Panel {
  readonly id: number;
  readonly title: string;
  readonly type: string;
  readonly datasource: { type: string; uid: string };
  readonly gridPos: { x: number; y: number; w: number; h: number };
  readonly targets: readonly { refId: string; expr: string }[];
}

const dashboards = readdirSync(dir)
  .filter((file) => file.endsWith('.json'))
  .map((file) => ({
    file,
    json: JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
      uid: string;
      title: string;
      panels: Panel[];
      templating: { list: { name: string }[] };
    },
  }));

/** Grafana's built-in and dashboard variables, as Grafana substitutes them for an "All" selection. */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$service', '.*');
}

describe('Grafana dashboards', () => {
  it('exist for RED and business metrics, each with a unique uid and well-formed panels', () => {
    expect(dashboards.map((d) => d.json.uid).sort()).toEqual(['bazaar-business', 'bazaar-red']);
    for (const { file, json } of dashboards) {
      expect(json.panels.length, file).toBeGreaterThanOrEqual(8);
      const ids = json.panels.map((panel) => panel.id);
      expect(new Set(ids).size, `${file}: panel ids unique`).toBe(ids.length);
      for (const panel of json.panels) {
        expect(panel.datasource.type, `${file} ${panel.title}`).toBe('prometheus');
        expect(panel.targets.length, `${file} ${panel.title}`).toBeGreaterThan(0);
        // Every $variable a query uses is defined by the dashboard or by Grafana itself.
        for (const target of panel.targets) {
          for (const [, name] of target.expr.matchAll(/\$(\w+)/g)) {
            const defined = json.templating.list.some((variable) => variable.name === name);
            expect(defined || name?.startsWith('__'), `${file} ${panel.title}: $${name}`).toBe(
              true,
            );
          }
        }
      }
    }
  });

  it('have only queries the live Prometheus accepts', async () => {
    const prometheus = testStack().url('prometheus');
    const failures: string[] = [];
    for (const { file, json } of dashboards) {
      for (const panel of json.panels) {
        for (const target of panel.targets) {
          const url = new URL('/api/v1/query', prometheus);
          url.searchParams.set('query', substitute(target.expr));
          const response = await fetch(url);
          const body = (await response.json()) as { status: string; error?: string };
          if (body.status !== 'success')
            failures.push(`${file} "${panel.title}" ${target.refId}: ${body.error}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });
});
