/**
 * `node dist-bench/bench/db-integrity-bench.js [memories]` (after `npm run build && tsc -p
 * tsconfig.bench.json`): a SQLite store of 100,000 memories (default), then the costs of what
 * issue 11's integrity work adds: the open with and without the start-up check, `PRAGMA quick_check`
 * and `integrity_check` alone, `brain db check` whole, `brain db reindex`, VACUUM and `brain db recover`.
 */
import path from 'node:path';
import { silentLogger } from '../src/core/logger.js';
import { openSqliteDatabase } from '../src/storage/sqlite/sqlite-database.js';
import { recoverSqlite } from '../src/storage/sqlite/sqlite-recover.js';
import { createSqliteStorage } from '../src/storage/sqlite/sqlite-storage.js';
import { benchHome, loadMemories, openBench, removeHome } from './bench-brain.js';
import { generateCorpus } from './corpus.js';

async function timed<T>(label: string, work: () => T | Promise<T>, runs = 1): Promise<T> {
  let result: T | undefined;
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    result = await work();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)] as number;
  console.log(
    `${label.padEnd(52)} ${median.toFixed(1).padStart(9)} ms${runs > 1 ? ` (median of ${runs})` : ''}`,
  );
  return result as T;
}

const count = Number(process.argv[2] ?? 100_000);
const home = benchHome('integrity');
try {
  const brain = await openBench(home);
  const corpus = generateCorpus(count, 0, 7);
  await loadMemories(brain, corpus.memories);
  const dbPath = brain.config.dbPath;
  await brain.close();
  console.log(`${count} memories in ${dbPath}`);
  const settings = { dbPath, busyTimeoutMs: 5000, sqliteCacheMb: 64 };
  await timed(
    'open + schema read (createSqliteStorage, close)',
    async () => {
      const s = createSqliteStorage(settings, { logger: silentLogger });
      await s.schema();
      await s.close();
    },
    5,
  );
  const db = openSqliteDatabase(dbPath, { busyTimeoutMs: 5000, cacheSizeMb: 64 });
  await timed('PRAGMA quick_check', () => db.pragma('quick_check'), 3);
  await timed('PRAGMA integrity_check', () => db.pragma('integrity_check'), 3);
  db.close();
  const storage = createSqliteStorage(settings, { logger: silentLogger });
  const report = await timed('brain db check (all checks)', () => storage.integrity().check());
  for (const c of report.checks) console.log(`  ${c.status.padEnd(5)} ${c.name}`);
  await timed('brain db reindex', () => storage.integrity().reindex());
  await timed('brain db vacuum', () => storage.integrity().vacuum());
  await storage.close();
  await timed('brain db recover --force (page salvage)', () =>
    recoverSqlite(dbPath, { busyTimeoutMs: 5000, cacheSizeMb: 64, force: true }),
  );
  console.log(`kept aside in ${path.dirname(dbPath)}`);
} finally {
  removeHome(home);
}
