import fs from 'node:fs';
import path from 'node:path';
import { DEPLOY, yamlDocument } from './deploy-helpers.js';

export const PROMETHEUS_DIR = path.join(DEPLOY, 'prometheus');
export const DASHBOARD_PATH = path.join(DEPLOY, 'grafana', 'brain-dashboard.json');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The alerting rules of deploy/prometheus/alerts.yml, every group's. */
export function alertRules(): AlertRule[] {
  const file = yamlDocument<{ groups: { name: string; rules: AlertRule[] }[] }>(
    path.join(PROMETHEUS_DIR, 'alerts.yml'),
  );
  return file.groups.flatMap((group) => group.rules);
}

export interface DashboardTarget {
  refId: string;
  expr: string;
  legendFormat?: string;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: DashboardTarget[];
}

export interface Dashboard {
  title: string;
  uid: string;
  panels: DashboardPanel[];
  templating: {
    list: { name: string; type: string; query?: unknown; definition?: string; allValue?: string }[];
  };
}

export function dashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(DASHBOARD_PATH, 'utf8')) as Dashboard;
}

/** Every PromQL expression of the dashboard: each panel target's, named `panel title / refId`. */
export function dashboardExpressions(): { name: string; expr: string }[] {
  return dashboard().panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ name: `${panel.title} / ${target.refId}`, expr: target.expr })),
  );
}

/**
 * A dashboard expression as Prometheus gets it from Grafana with every instance selected: `$instance`
 * is the variable's "All" value and `$__rate_interval` a window of `rateWindow`.
 */
export function grafanaToPromql(expr: string, rateWindow: string): string {
  const allInstances = dashboard().templating.list.find((v) => v.name === 'instance')?.allValue ?? '.+';
  return expr
    .replaceAll(/\$__rate_interval|\$\{__rate_interval\}/g, rateWindow)
    .replaceAll(/\$instance\b|\$\{instance\}/g, allInstances);
}

/** The metric names an expression reads: the identifiers left once matchers, windows, groupings and calls go. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replaceAll(/"(?:[^"\\]|\\.)*"/g, '""')
    .replaceAll(/\{[^}]*\}/g, ' ')
    .replaceAll(/\[[^\]]*\]/g, ' ')
    .replaceAll(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const [, name] of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    if (!/^(bool|and|or|unless|offset|inf|nan)$/i.test(name as string)) names.add(name as string);
  }
  return [...names];
}

/**
 * An alert's condition without its threshold (`X > 0.5` → `X`): what the alert watches, which should
 * have series on a healthy Brain even while the alert does not fire.
 */
export function withoutThreshold(expr: string): string {
  const match = /^([\s\S]*\S)\s*(>|<|>=|<=|==|!=)\s*[0-9.e+\-*/ ]+$/.exec(expr.trim());
  if (!match) throw new Error(`no trailing comparison with a number in: ${expr}`);
  return match[1] as string;
}
