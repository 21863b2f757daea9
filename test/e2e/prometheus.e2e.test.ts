/**
 * deploy/prometheus and deploy/grafana against the real thing: a Prometheus server (Debian's, installed by
 * scripts/install-services.sh) scrapes the built `brain serve` on its metrics port with the shipped
 * scrape config and alert rules, and every expression of the alerts and of the dashboard is evaluated
 * by it; every metric they read must be one Brain serves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  alertRules,
  dashboard,
  dashboardExpressions,
  grafanaToPromql,
  metricNames,
  PROMETHEUS_DIR,
  withoutThreshold,
} from '../monitoring-expressions.js';
import { runBrain, type ServingBrain, startServe, tempHome } from './brain-process.js';

/** Scrapes and rule evaluations every second, so that a few seconds give rate() its two samples. */
const INTERVAL = '1s';
/** The window that stands in for Grafana's `$__rate_interval`. */
const RATE_WINDOW = '1m';

let home: string;
let brain: ServingBrain;
let metricsUrl: string;
let prometheus: ChildProcess;
let prometheusUrl: string;
let prometheusLog = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls until `found()` returns something, or fails after `ms` naming `what`. */
async function waitFor<T>(what: () => string, found: () => Promise<T | null>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await found();
    if (value !== null) return value;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what()}\nprometheus log:\n${prometheusLog}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface QueryAnswer {
  status: 'success' | 'error';
  error?: string;
  warnings?: string[];
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** An instant query through Prometheus's HTTP API. */
async function query(promql: string): Promise<QueryAnswer> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  return (await response.json()) as QueryAnswer;
}

/**
 * deploy/prometheus/prometheus.yml as it is, but for what a test must change: the target (Brain's metrics
 * port here), the intervals (seconds, not 15), and the rule file's path (the generated config lives in a
 * temp dir).
 */
function generatedConfig(target: string): string {
  const config = parse(fs.readFileSync(path.join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8'));
  config.global.scrape_interval = INTERVAL;
  config.global.evaluation_interval = INTERVAL;
  config.rule_files = config.rule_files.map((file: string) => path.join(PROMETHEUS_DIR, file));
  expect(config.scrape_configs).toHaveLength(1);
  const [job] = config.scrape_configs;
  // A scrape may not take longer than its interval.
  job.scrape_timeout = INTERVAL;
  expect(job.static_configs).toHaveLength(1);
  expect(job.static_configs[0].targets).toHaveLength(1);
  job.static_configs[0].targets = [target];
  return stringify(config);
}

async function startPrometheus(target: string): Promise<void> {
  const dir = path.join(home, 'prometheus');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), generatedConfig(target));
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.on('error', (error) => {
    prometheusLog += `could not start prometheus (scripts/install-services.sh installs it): ${error.message}\n`;
  });
  prometheus.stdout?.on('data', (chunk) => {
    prometheusLog += chunk;
  });
  prometheus.stderr?.on('data', (chunk) => {
    prometheusLog += chunk;
  });
  await waitFor(
    () => `Prometheus to be ready at ${prometheusUrl}`,
    async () => {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited:\n${prometheusLog}`);
      const ready = await fetch(`${prometheusUrl}/-/ready`).catch(() => null);
      return ready?.ok ? true : null;
    },
  );
}

beforeAll(async () => {
  home = tempHome('brain-prometheus-e2e-');
  const env = { BRAIN_HOME: home, BRAIN_METRICS_PORT: '0' };
  // A job run and a backup before the server starts, so that the job and backup series have values.
  const job = await runBrain(['jobs', 'run', 'checkpoint'], env);
  expect(job.code, job.stderr).toBe(0);
  const backup = await runBrain(['backup'], env);
  expect(backup.code, backup.stderr).toBe(0);
  brain = await startServe(env);
  metricsUrl = /"metrics":"(http:\/\/[^"]+)"/.exec(brain.logs())?.[1] as string;
  expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  await startPrometheus(new URL(metricsUrl).host);
  // Histogram and counter series exist only once something was counted.
  await sendTraffic(env);
}, 120_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus.on('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  if (brain && brain.child.exitCode === null) await brain.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

/** Requests of every kind the expressions look at: REST and MCP memory operations, and some 503s. */
async function sendTraffic(env: Record<string, string>): Promise<void> {
  const created = await fetch(`${brain.url}/v1/memories`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'Prometheus scrapes Brain on its metrics port', tags: ['ops'] }),
  });
  expect(created.status).toBe(201);
  expect((await fetch(`${brain.url}/v1/memories?limit=5`)).status).toBe(200);

  const client = new Client({ name: 'e2e-prometheus', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${brain.url}/mcp`)));
  try {
    const saved = await client.callTool({
      name: 'remember',
      arguments: { content: 'Grafana reads Prometheus' },
    });
    expect(saved.isError).toBeFalsy();
    const found = await client.callTool({ name: 'recall', arguments: { query: 'Grafana', k: 3 } });
    expect(found.isError).toBeFalsy();
  } finally {
    await client.close();
  }

  // Maintenance mode answers writes with 503: real server-error series for the error-rate expressions.
  expect((await runBrain(['maintenance', 'on', '--reason', 'prometheus e2e'], env)).code).toBe(0);
  try {
    await waitFor(
      () => 'a write to be refused with 503 in maintenance mode',
      async () => {
        const refused = await fetch(`${brain.url}/v1/memories`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ content: 'refused while in maintenance' }),
        });
        return refused.status === 503 ? true : null;
      },
      20_000,
    );
  } finally {
    expect((await runBrain(['maintenance', 'off'], env)).code).toBe(0);
  }
}

/** Every expression to evaluate: each alert's (and what it watches), each panel's, the instance variable's. */
function expressions(): { name: string; promql: string; needsData: boolean }[] {
  const list = [
    ...alertRules().flatMap((rule) => [
      { name: `alert ${rule.alert}`, promql: rule.expr, needsData: false },
      // What the alert watches has series on a healthy Brain, even while the alert itself is silent.
      {
        name: `alert ${rule.alert} without its threshold`,
        promql: withoutThreshold(rule.expr),
        needsData: true,
      },
    ]),
    ...dashboardExpressions().map(({ name, expr }) => ({
      name: `panel ${name}`,
      promql: grafanaToPromql(expr, RATE_WINDOW),
      needsData: true,
    })),
  ];
  const variable = dashboard().templating.list.find((v) => v.name === 'instance');
  const selector = /^label_values\((.+), *instance\)$/.exec(variable?.definition ?? '')?.[1];
  expect(selector).toBeDefined();
  list.push({ name: 'variable instance', promql: selector as string, needsData: true });
  return list;
}

let everySeries: Promise<void> | undefined;

/**
 * Resolves once every expression has answered without error and each that should has series (a few
 * scrapes after the traffic: rate() needs two samples); fails naming the first error or the empty ones.
 */
function expressionsAnswer(): Promise<void> {
  everySeries ??= (async () => {
    const list = expressions();
    expect(list.length).toBeGreaterThan(25);
    const empty = new Set(list.map((e) => e.name));
    await waitFor(
      () => `series from: ${[...empty].join('; ')}`,
      async () => {
        for (const { name, promql, needsData } of list) {
          const answer = await query(promql);
          expect({ name, status: answer.status, error: answer.error, warnings: answer.warnings }).toEqual({
            name,
            status: 'success',
            error: undefined,
            warnings: undefined,
          });
          if (!needsData || (answer.data?.result.length ?? 0) > 0) empty.delete(name);
        }
        return empty.size === 0 ? true : null;
      },
    );
  })();
  return everySeries;
}

describe('Prometheus scraping brain serve with deploy/prometheus/prometheus.yml', () => {
  it('scrapes Brain successfully (up == 1)', async () => {
    const up = await waitFor(
      () => 'up{job="brain"} == 1',
      async () => {
        const answer = await query('up{job="brain"}');
        expect(answer.status).toBe('success');
        const [series] = answer.data?.result ?? [];
        return series?.value[1] === '1' ? series : null;
      },
    );
    expect(up.metric).toMatchObject({ job: 'brain', service: 'brain', instance: new URL(metricsUrl).host });
  });

  it("evaluates every alert's and every dashboard panel's expression without error, each with series", async () => {
    await expressionsAnswer();
  });

  it("loads alerts.yml and evaluates every rule on Brain's series without an error", async () => {
    await expressionsAnswer();
    // Evaluations from now on see every series the expressions read.
    const since = Date.now();
    const names = alertRules().map((r) => r.alert);
    const rules = await waitFor(
      () => 'every rule to be evaluated',
      async () => {
        const response = await fetch(`${prometheusUrl}/api/v1/rules`);
        const body = (await response.json()) as {
          data: {
            groups: {
              rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
            }[];
          };
        };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length === names.length && all.every((r) => Date.parse(r.lastEvaluation) > since)
          ? all
          : null;
      },
    );
    expect(rules.map((r) => ({ name: r.name, health: r.health, lastError: r.lastError ?? '' }))).toEqual(
      names.map((name) => ({ name, health: 'ok', lastError: '' })),
    );
  });

  it('every metric the expressions read is one Brain serves on /metrics', async () => {
    const text = await (await fetch(metricsUrl)).text();
    const served = new Set(
      text
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1]),
    );
    const read = new Set(
      [...alertRules().map((r) => r.expr), ...dashboardExpressions().map((e) => e.expr)].flatMap(metricNames),
    );
    // `up` is Prometheus's own series of each scrape.
    read.delete('up');
    expect([...read].filter((name) => name.startsWith('brain_')).length).toBeGreaterThanOrEqual(10);
    expect([...read].filter((name) => !served.has(name)).sort()).toEqual([]);
  });

  it("keeps Brain's job name as exported_job, which the job rules and panels group by", async () => {
    const series = await waitFor(
      () => 'the checkpoint job series',
      async () => {
        const answer = await query('brain_job_last_success_timestamp_seconds{exported_job="checkpoint"}');
        return answer.data?.result.length ? answer.data.result : null;
      },
    );
    expect(series.map((s) => s.metric)).toEqual([
      expect.objectContaining({ job: 'brain', exported_job: 'checkpoint' }),
    ]);
    const rules = alertRules().filter((r) => r.expr.includes('brain_job_'));
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) expect(rule.annotations?.summary).toContain('$labels.exported_job');
  });
});
