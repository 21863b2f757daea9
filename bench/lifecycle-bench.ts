/**
 * `npm run bench -- lifecycle`: the rebalance of 100,000 memories (issue 12's target: ≤ 2 s), on SQLite
 * and on PostgreSQL (a throwaway cluster on 127.0.0.1) in one run. Memories are synthetic (varied
 * importance, types and ages over 200 days, no vectors: the rebalance reads none) in one tenant with
 * BRAIN_HOT_MAX 2,000. Measured: the first rebalance (every memory re-scored, ~98,000 demoted and
 * recorded), then steady-state rebalances 15 minutes apart with 1% of the memories recalled between
 * each (the scheduled job's case), and a decay pass; with peak RSS.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import { createFixedClock } from '../src/core/clock.js';
import { newId } from '../src/core/ids.js';
import { silentLogger } from '../src/core/logger.js';
import { contentHash } from '../src/modules/memory/content-hash.js';
import type { NewMemory } from '../src/modules/memory/memory-store.js';
import { createTierService, type RebalanceReport } from '../src/modules/memory/tier-service.js';
import { createStorage } from '../src/storage/create-storage.js';
import {
  createTestDatabase,
  type LocalPostgres,
  postgresUnavailable,
  startLocalPostgres,
} from '../test/services/local-postgres.js';
import { collectGarbage } from './bench-brain.js';
import { createRandom } from './corpus.js';
import {
  type Figure,
  figure,
  formatTable,
  latencyFigures,
  readRss,
  resetPeakRss,
  summarize,
} from './stats.js';

const MEMORIES = Number(process.env.LIFECYCLE_BENCH_MEMORIES ?? 100_000);
const STEADY_RUNS = 7;
const TARGET = { op: '<=' as const, value: 2000 };
const TYPES = ['fact', 'fact', 'fact', 'event', 'note', 'decision', 'preference'];
const START = Date.parse('2026-01-01T00:00:00Z');
const DAY = 86_400_000;

function rows(count: number): NewMemory[] {
  const rand = createRandom(11);
  return Array.from({ length: count }, (_, i) => {
    const at = START + Math.floor(rand() * 200 * DAY);
    const content = `synthetic memory ${i} about topic ${i % 997}`;
    return {
      id: newId('mem', at),
      key: null,
      content,
      content_hash: contentHash(content),
      // 1% protected (user_preferences), 0.2% pinned: the rest compete for the hot tier.
      type: i % 100 === 0 ? 'user_preferences' : (TYPES[i % TYPES.length] as string),
      tags: i % 500 === 7 ? ['pinned'] : [],
      metadata: {},
      importance: Math.round(rand() * 100) / 100,
      project: null,
      session: null,
      created_at: new Date(at).toISOString(),
      expires_at: null,
      valid_from: null,
      valid_to: null,
      embedding: null,
      embedding_model: null,
      keep: [],
    };
  });
}

async function engineFigures(name: string, env: Record<string, string>, home: string): Promise<Figure[]> {
  const config = requireValidConfig(
    loadConfig({ env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', BRAIN_EMBEDDER: 'none', ...env }, cwd: home }),
  );
  const storage = await createStorage(config, { logger: silentLogger });
  await storage.migrate();
  try {
    const { memories, tiers } = storage.stores();
    const scope = { tenantId: 'default' };
    const all = rows(MEMORIES);
    const seedStart = performance.now();
    for (let i = 0; i < all.length; i += 1000) await memories.insert(scope, all.slice(i, i + 1000));
    console.log(
      `${name}: ${MEMORIES} memories seeded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
    );
    const clock = createFixedClock(new Date(START + 201 * DAY));
    const service = createTierService({
      tiers,
      memories,
      settings: {
        hotMax: 2000,
        coldAfterDays: 90,
        promoteAfterAccesses: 3,
        halfLifeDays: 30,
        halfLives: { event: 14, fact: 90 },
      },
      clock,
      logger: silentLogger,
    });
    collectGarbage();
    resetPeakRss();
    const timedRun = async (options?: { moves?: boolean }) => {
      const t = performance.now();
      const report = await service.rebalance(options);
      return { ms: performance.now() - t, report };
    };
    const first = await timedRun();
    const rand = createRandom(5);
    const steady: number[] = [];
    let lastSteady: RebalanceReport | null = null;
    for (let r = 0; r < STEADY_RUNS; r++) {
      clock.advance(15 * 60_000);
      const touched = Array.from(
        { length: MEMORIES / 100 },
        () => all[Math.floor(rand() * all.length)]?.id as string,
      );
      await memories.touch(scope, touched, clock.now().toISOString());
      const run = await timedRun();
      steady.push(run.ms);
      lastSteady = run.report;
    }
    clock.advance(6 * 3_600_000);
    const decay = await timedRun({ moves: false });
    const rss = readRss();
    console.log(`${name} first: ${JSON.stringify(first.report)}`);
    console.log(`${name} last steady: ${JSON.stringify(lastSteady)}`);
    return [
      figure(
        `${name} first rebalance of ${MEMORIES} (all re-scored, ${first.report.demoted + first.report.cooled} moved)`,
        first.ms,
        'ms',
        TARGET,
      ),
      ...latencyFigures(`${name} steady rebalance (1% recalled, 15 min apart)`, summarize(steady), {
        p95: TARGET.value,
      }),
      figure(`${name} decay pass (re-score only)`, decay.ms, 'ms', TARGET),
      figure(`${name} RSS peak during rebalances`, rss.peakMb, 'MB'),
    ];
  } finally {
    await storage.close();
  }
}

export async function printLifecycleBench(): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-lifecycle-'));
  let cluster: LocalPostgres | null = null;
  const figures: Figure[] = [];
  try {
    figures.push(...(await engineFigures('sqlite', {}, path.join(dir, 'sqlite'))));
    const missing = postgresUnavailable();
    if (missing) console.log(`PostgreSQL skipped: ${missing}`);
    else {
      cluster = await startLocalPostgres({ durable: true });
      const url = createTestDatabase(cluster.baseUrl, 'lifecycle');
      figures.push(...(await engineFigures('postgres', { BRAIN_DATABASE_URL: url }, path.join(dir, 'pg'))));
    }
  } finally {
    cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(formatTable('memory lifecycle: rebalance (issue 12)', figures));
  return figures;
}
