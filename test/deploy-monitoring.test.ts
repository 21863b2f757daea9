import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEPLOY, removeTempDirs, runTool, tempDir, yamlDocument } from './deploy-helpers.js';
import {
  alertRules,
  DASHBOARD_PATH,
  dashboard,
  dashboardExpressions,
  metricNames,
  PROMETHEUS_DIR,
  withoutThreshold,
} from './monitoring-expressions.js';

const promtool = (...args: string[]) => runTool('promtool', args, { cwd: PROMETHEUS_DIR });

/** A copy of deploy/prometheus/ in a temp dir with one file edited, for the checks that must fail. */
function brokenCopy(file: string, edit: (text: string) => string): string {
  const dir = tempDir('brain-prometheus-');
  for (const name of fs.readdirSync(PROMETHEUS_DIR))
    fs.copyFileSync(path.join(PROMETHEUS_DIR, name), path.join(dir, name));
  const target = path.join(dir, file);
  const before = fs.readFileSync(target, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the edit changed nothing in ${file}`);
  fs.writeFileSync(target, after);
  return target;
}

interface ScrapeConfig {
  job_name: string;
  metrics_path: string;
  scrape_timeout?: string;
  static_configs: { targets: string[] }[];
}

describe('deploy/prometheus', () => {
  afterAll(removeTempDirs);

  it('prometheus.yml passes promtool check config, alerts.yml included', () => {
    const result = promtool('check', 'config', 'prometheus.yml');
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/SUCCESS: 1 rule files found/);
    const broken = brokenCopy('prometheus.yml', (t) =>
      t.replace('scrape_timeout: 10s', 'scrape_timeot: 10s'),
    );
    expect(runTool('promtool', ['check', 'config', broken]).output).toMatch(/field scrape_timeot not found/);
  });

  it("scrapes Brain's metrics port, the one compose, the Dockerfile and Kubernetes set", () => {
    const config = yamlDocument<{ scrape_configs: ScrapeConfig[]; rule_files: string[] }>(
      path.join(PROMETHEUS_DIR, 'prometheus.yml'),
    );
    expect(config.rule_files).toEqual(['alerts.yml']);
    const [job] = config.scrape_configs;
    expect(job?.job_name).toBe('brain');
    expect(job?.metrics_path).toBe('/metrics');
    const compose = yamlDocument<{ services: Record<string, { environment?: Record<string, string> }> }>(
      path.join(DEPLOY, 'compose.yaml'),
    );
    const port = compose.services.brain?.environment?.BRAIN_METRICS_PORT;
    expect(port).toBe('9464');
    expect(job?.static_configs[0]?.targets).toEqual([`brain:${port}`]);
    expect(fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8')).toContain(`BRAIN_METRICS_PORT=${port}`);
    const configMap = yamlDocument<{ data: Record<string, string> }>(
      path.join(DEPLOY, 'kubernetes', 'configmap.yaml'),
    );
    expect(configMap.data.BRAIN_METRICS_PORT).toBe(port);
  });

  it('alerts.yml passes promtool check rules (which catches a bad expression)', () => {
    const result = promtool('check', 'rules', 'alerts.yml');
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(new RegExp(`SUCCESS: ${alertRules().length} rules found`));
    const broken = brokenCopy('alerts.yml', (t) =>
      t.replace('rate(brain_http_requests_total[5m])', 'rat(brain_http_requests_total[5m])'),
    );
    const failed = runTool('promtool', ['check', 'rules', broken]);
    expect(failed.code).not.toBe(0);
    expect(failed.output).toMatch(/unknown function with name "rat"/);
  });

  it('every alert has a severity, a summary and a description, and a threshold on what it watches', () => {
    const rules = alertRules();
    expect(rules.map((r) => r.alert)).toEqual([
      'BrainInstanceDown',
      'BrainHighErrorRate',
      'BrainHighLatencyP95',
      'BrainHighMemory',
      'BrainBackupTooOld',
      'BrainEmbeddingQueueBacklog',
      'BrainExecutionQueueBacklog',
      'BrainDeadLetterJobs',
      'BrainJobNotSucceeding',
    ]);
    for (const rule of rules) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({
        alert: rule.alert,
        severity: expect.stringMatching(/^(warning|critical)$/),
      });
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      expect(rule.for, rule.alert).toMatch(/^\d+m$/);
      expect(() => withoutThreshold(rule.expr), rule.alert).not.toThrow();
    }
  });

  it('alerts.test.yml passes promtool test rules, with a test for every alert (and a wrong one fails)', () => {
    const result = promtool('test', 'rules', 'alerts.test.yml');
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/SUCCESS/);

    const tests = yamlDocument<{
      tests: { alert_rule_test: { alertname: string; exp_alerts?: unknown[] }[] }[];
    }>(path.join(PROMETHEUS_DIR, 'alerts.test.yml'));
    const fired = new Set(
      tests.tests.flatMap((t) =>
        t.alert_rule_test.filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname),
      ),
    );
    expect([...fired].sort()).toEqual(
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );

    const wrong = brokenCopy('alerts.test.yml', (t) =>
      t.replace(
        'exp_labels: {severity: critical, instance: a}',
        'exp_labels: {severity: warning, instance: a}',
      ),
    );
    const failed = runTool('promtool', ['test', 'rules', wrong]);
    expect(failed.code).not.toBe(0);
    expect(failed.output).toMatch(/FAILED/);
  });
});

describe('deploy/grafana/brain-dashboard.json', () => {
  const board = dashboard();
  const panel = (title: RegExp) => board.panels.filter((p) => title.test(p.title));
  const exprs = (title: RegExp) => panel(title).flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it('is a dashboard: title, uid, a Prometheus datasource variable and an instance variable', () => {
    expect(fs.readFileSync(DASHBOARD_PATH, 'utf8').endsWith('\n')).toBe(true);
    expect(board.title).toBe('Brain');
    expect(board.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    const variables = new Map(board.templating.list.map((v) => [v.name, v]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.get('instance')).toMatchObject({ type: 'query', allValue: '.+' });
  });

  it("has the operations guide's panels, each on the metric it is named for", () => {
    expect(exprs(/^Request latency p95$/).join()).toMatch(
      /histogram_quantile\(0\.95, .*brain_http_request_duration_seconds_bucket/,
    );
    expect(exprs(/^Memory operations per second$/).join()).toMatch(/rate\(brain_memory_operations_total/);
    // The operations guide's execution-queue panel, with the embedding queue beside it.
    const [queue] = panel(/queue/i);
    expect(queue?.title).toMatch(/executions/i);
    expect(exprs(/queue/i).map(metricNames)).toEqual([
      ['brain_embedding_queue_size'],
      ['brain_execution_queue_size'],
    ]);
    expect(exprs(/^Database size$/).map(metricNames)).toEqual([['brain_database_size_bytes']]);
    expect(exprs(/^Error rate/).join()).toMatch(/status=~"5\.\."/);
    expect(exprs(/RSS/).map(metricNames)).toEqual([['process_resident_memory_bytes']]);
    expect(
      exprs(/^Jobs: /)
        .flatMap(metricNames)
        .sort(),
    ).toEqual([
      'brain_backup_age_seconds',
      'brain_dead_letter_jobs',
      'brain_job_last_duration_seconds',
      'brain_job_last_run_failed',
      'brain_job_last_success_timestamp_seconds',
    ]);
  });

  it('every panel queries Prometheus through the variable, with unique ids and refIds, on the grid', () => {
    const ids = board.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of board.panels) {
      expect({ panel: p.title, datasource: p.datasource }).toEqual({
        panel: p.title,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable, not a template.
        datasource: { type: 'prometheus', uid: '${datasource}' },
      });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const target of p.targets ?? []) {
        expect(target.expr.trim(), p.title).not.toBe('');
        // Only the variables the Prometheus e2e test fills in (test/e2e/prometheus.e2e.test.ts).
        expect(target.expr.replaceAll(/\$(instance|__rate_interval)\b/g, ''), p.title).not.toMatch(/\$/);
      }
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++)
        for (let col = x; col < x + w; col++) {
          expect(cells.has(`${row}:${col}`), `${p.title} overlaps at ${row}:${col}`).toBe(false);
          cells.add(`${row}:${col}`);
        }
    }
    expect(dashboardExpressions().length).toBeGreaterThanOrEqual(board.panels.length);
  });
});
