import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { BrainConfig } from '../config/config-schema.js';
import { silentLogger } from '../core/logger.js';
import { createStorage } from '../storage/create-storage.js';
import type { DailyReport } from '../surfaces/cli/doctor-commands.js';
import { LOG_FILES } from './app-logger.js';
import { probeBrain } from './doctor.js';

const DAY_MS = 86_400_000;
/** Events and slow queries counted per kind, at most (the report says "1000" when there are more). */
const COUNT_CAP = 1000;

/**
 * Lines at level error (50) or fatal (60) since `since` in BRAIN_LOG_PATH's `error.log` and its rotated
 * copies (`error.log.1` …), read line by line; lines that are not pino JSON are skipped.
 */
export async function countLoggedErrors(
  logPath: string,
  since: Date,
): Promise<{ count: number; files: string[]; last: string | null }> {
  const names = [
    LOG_FILES.error.name,
    ...Array.from({ length: LOG_FILES.error.keep }, (_, i) => `${LOG_FILES.error.name}.${i + 1}`),
  ];
  const files = names.map((n) => path.join(logPath, n)).filter((f) => fs.existsSync(f));
  let count = 0;
  let last: { time: number; msg: string } | null = null;
  for (const file of files) {
    const lines = readline.createInterface({
      input: fs.createReadStream(file),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      let entry: { level?: unknown; time?: unknown; msg?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      const time = typeof entry.time === 'number' ? entry.time : Date.parse(String(entry.time));
      if (typeof entry.level !== 'number' || entry.level < 50 || !(time >= since.getTime())) continue;
      count++;
      if (!last || time > last.time) last = { time, msg: String(entry.msg ?? '') };
    }
  }
  return { count, files, last: last ? `${new Date(last.time).toISOString()} ${last.msg}` : null };
}

/**
 * `brain report daily`: whether a server answers on the configured address (its /health), the store's
 * memories by type and tier, its size, the errors of the last 24 hours (log files and failed audit
 * events), sessions seen and slow queries recorded in that time.
 */
export async function dailyReport(config: BrainConfig, now: Date = new Date()): Promise<DailyReport> {
  const since = new Date(now.getTime() - DAY_MS);
  const sinceText = since.toISOString();
  const served = await probeBrain(config.host, config.port);
  const storage = await createStorage(config, { logger: silentLogger });
  try {
    const [activity, size, failed, denied, slow] = await Promise.all([
      storage.integrity().activity(sinceText),
      storage.sizeBytes(),
      storage.stores().audit.list({ outcome: 'error', since: sinceText, limit: COUNT_CAP }),
      storage.stores().audit.list({ outcome: 'denied', since: sinceText, limit: COUNT_CAP }),
      storage.stores().queryLog.list({ since: sinceText, limit: COUNT_CAP, order: 'slowest' }),
    ]);
    const slowest = slow[0];
    return {
      generated_at: now.toISOString(),
      since: sinceText,
      service: served
        ? {
            running: true,
            url: served.url,
            status: served.status,
            version: served.version,
            message: `brain serve${served.version ? ` ${served.version}` : ''} answers at ${served.url}, health ${served.status}`,
          }
        : {
            running: false,
            url: `http://${config.host}:${config.port}`,
            status: null,
            version: null,
            message: `no server answers at ${config.host}:${config.port} (brain mcp processes run per client and are not seen here)`,
          },
      database: { engine: storage.engine, location: storage.location, size_bytes: size },
      memories: {
        live: activity.memories.live,
        forgotten: activity.memories.forgotten,
        by_type: activity.memories.byType,
        by_tier: activity.memories.byTier,
      },
      sessions: { total: activity.sessions.total, active: activity.sessions.activeSince },
      errors: {
        log: config.logPath ? await countLoggedErrors(config.logPath, since) : null,
        audit: { failed: failed.length, denied: denied.length },
      },
      slow_queries: {
        count: slow.length,
        threshold_ms: config.slowQueryMs,
        slowest: slowest ? { sql: slowest.sql, elapsed_ms: slowest.elapsedMs } : null,
      },
    };
  } finally {
    await storage.close();
  }
}
