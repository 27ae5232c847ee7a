import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { componentSpecs, locateTools, readStackConfig, repoRoot } from '@bazaar/stack';
import { eventually, scaleTestStack, testStack, testStackStatus } from '@bazaar/testing';
import { describe, expect, it } from 'vitest';

// Acceptance (issue #10, metrics and alerts): the rules are valid and their unit tests pass,
// Prometheus discovers every running service instance from the stack (file SD, following scale),
// every service's live /metrics passes `promtool check metrics`, and Alertmanager runs the
// rendered config that routes to the notifications webhook.

const config = readStackConfig('test');
const tools = locateTools(config);
type ToolPaths = Required<ReturnType<typeof locateTools>>;
const rulesDir = path.join(repoRoot, 'observability', 'prometheus', 'rules');

function tool(name: keyof ToolPaths): string {
  const found = tools[name];
  if (found === undefined) throw new Error(`${name} is not installed (npm start installs it)`);
  return found;
}

function runTool(name: keyof ToolPaths, args: readonly string[], input?: string) {
  const result = spawnSync(tool(name), [...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
  });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

async function prometheusQuery(
  query: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const url = new URL('/api/v1/query', testStack().url('prometheus'));
  url.searchParams.set('query', query);
  const response = await fetch(url);
  const body = (await response.json()) as {
    status: string;
    data: { result: never[] };
    error?: string;
  };
  if (body.status !== 'success') throw new Error(`${query}: ${body.error ?? response.status}`);
  return body.data.result;
}

describe('Prometheus rules', () => {
  it('pass `promtool check rules`', () => {
    const files = readdirSync(rulesDir)
      .filter((file) => file.endsWith('.yml'))
      .map((file) => path.join(rulesDir, file));
    expect(files.length).toBeGreaterThanOrEqual(2);
    const { code, output } = runTool('promtool', ['check', 'rules', ...files]);
    expect(output).not.toMatch(/FAILED|error/i);
    expect(code, output).toBe(0);
  });

  it('pass their unit tests (`promtool test rules`): every alert fires when it should and only then', () => {
    const tests = path.join(repoRoot, 'observability', 'prometheus', 'tests', 'alerts.test.yml');
    const { code, output } = runTool('promtool', ['test', 'rules', tests]);
    expect(output).toContain('SUCCESS');
    expect(code, output).toBe(0);
    // Every alert in the rules has at least one test case naming it.
    const alertNames = [
      ...readFileSync(path.join(rulesDir, 'alerts.yml'), 'utf8').matchAll(/- alert: (\w+)/g),
    ].map((match) => match[1]);
    const testText = readFileSync(tests, 'utf8');
    for (const name of alertNames) expect(testText, name).toContain(`alertname: ${name}`);
  }, 180_000);

  it('are loaded by the running Prometheus, healthy', async () => {
    const response = await fetch(new URL('/api/v1/rules', testStack().url('prometheus')));
    const body = (await response.json()) as {
      data: { groups: { name: string; rules: { name: string; health: string; type: string }[] }[] };
    };
    const rules = body.data.groups.flatMap((group) => group.rules);
    expect(rules.map((rule) => rule.name)).toEqual(
      expect.arrayContaining([
        'BazaarInstanceDown',
        'ApiAvailabilityBudgetBurnFast',
        'ApiLatencyBudgetBurnFast',
        'OrderSagaStuck',
        'DeadLetterQueueNotEmpty',
        'OutboxLagging',
        'ConsumerLagGrowing',
        'slo:api_availability_errors:ratio_rate5m',
      ]),
    );
    await eventually(
      async () => {
        const again = (await (
          await fetch(new URL('/api/v1/rules', testStack().url('prometheus')))
        ).json()) as typeof body;
        const unhealthy = again.data.groups
          .flatMap((g) => g.rules)
          .filter((rule) => rule.health === 'err');
        return unhealthy.length === 0 ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'every rule evaluates without error' },
    );
  });
});

describe('Prometheus scrapes every service instance the stack runs', () => {
  it('has an `up == 1` target per running instance, labelled with its service', async () => {
    const kinds = new Map(componentSpecs.map((spec) => [spec.name, spec.kind]));
    const serviceNames = new Set(
      (await testStackStatus()).filter((c) => kinds.get(c.name) === 'service').map((c) => c.name),
    );
    expect(serviceNames.size).toBeGreaterThanOrEqual(3);
    await eventually(
      async () => {
        const up = await prometheusQuery('up{job="bazaar"} == 1');
        const seen = new Set(up.map((series) => series.metric.service));
        return [...serviceNames].every((name) => seen.has(name)) ? true : undefined;
      },
      { timeoutMs: 30_000, what: `every service (${[...serviceNames].join(', ')}) scraped` },
    );
  });

  it('follows `npm run scale`: a second instance is scraped, and dropped after scaling back', async () => {
    scaleTestStack('psp-sandbox', 2);
    try {
      const second = await eventually(
        async () =>
          (await testStackStatus()).find((c) => c.name === 'psp-sandbox' && c.instance === 2),
        { timeoutMs: 15_000, what: 'the second psp-sandbox instance in the status' },
      );
      expect(second).toBeDefined();
      await eventually(
        async () => {
          const up = await prometheusQuery('up{job="bazaar", service="psp-sandbox"} == 1');
          return up.some((series) => series.metric.instance === `127.0.0.1:${second.port}`)
            ? true
            : undefined;
        },
        { timeoutMs: 30_000, what: 'the second psp-sandbox instance scraped' },
      );
    } finally {
      scaleTestStack('psp-sandbox', 1);
    }
    const targetsUrl = new URL('/api/v1/targets?state=active', testStack().url('prometheus'));
    await eventually(
      async () => {
        const body = (await (await fetch(targetsUrl)).json()) as {
          data: { activeTargets: { labels: Record<string, string> }[] };
        };
        const psp = body.data.activeTargets.filter(
          (target) => target.labels.service === 'psp-sandbox',
        );
        return psp.length === 1 ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'one psp-sandbox target after scaling back' },
    );
  });

  it('reads metrics that pass `promtool check metrics` from every service instance', async () => {
    const up = await prometheusQuery('up{job="bazaar"} == 1');
    expect(up.length).toBeGreaterThanOrEqual(3);
    for (const series of up) {
      const body = await (await fetch(`http://${series.metric.instance}/metrics`)).text();
      expect(body).toContain('target_info');
      const { code, output } = runTool('promtool', ['check', 'metrics'], body);
      // promtool prints one line per naming problem (and exits 1 for errors): expect none.
      expect(output.trim(), `${series.metric.service}: ${output}`).toBe('');
      expect(code).toBe(0);
    }
  });
});

describe('Alertmanager', () => {
  it('runs the rendered config: alerts go to the notifications webhook with a bearer token from a file', async () => {
    const rendered = path.join(config.stateDir, 'data', 'alertmanager', 'alertmanager.yml');
    const { code, output } = runTool('amtool', ['check-config', rendered]);
    expect(code, output).toBe(0);
    const text = readFileSync(rendered, 'utf8');
    expect(text).toContain(`${testStack().url('notifications')}/v1/alerts/alertmanager`);
    expect(text).toMatch(/credentials_file: \/.+webhook-token/);
    expect(text).not.toMatch(/\$\{[A-Z_]+\}/);
    const status = (await (
      await fetch(new URL('/api/v2/status', testStack().url('alertmanager')))
    ).json()) as {
      config: { original: string };
    };
    expect(status.config.original).toContain('/v1/alerts/alertmanager');
    // The running Alertmanager is not clustered (no gossip port).
    const peers = (status as unknown as { cluster: { status: string; peers?: unknown[] } }).cluster;
    expect(peers.status).toBe('disabled');
  });
});
