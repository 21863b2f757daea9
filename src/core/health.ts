/** One readiness check: whether it passes, and a sentence saying why (and what to do when it fails). */
export interface HealthCheck {
  ok: boolean;
  message: string;
}

/** What `GET /health/ready` reports: `failing` as soon as any check fails. */
export interface HealthReport {
  status: 'ok' | 'failing';
  checks: Record<string, HealthCheck>;
}
