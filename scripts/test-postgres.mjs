#!/usr/bin/env node
// The service, MCP and HTTP tests again, on PostgreSQL (BRAIN_TEST_ENGINE=postgres): the first `vitest run`
// of `npm test` runs them on SQLite and every storage contract on both engines. Skips, loudly, when
// PostgreSQL with pgvector is not installed (scripts/install-services.sh installs it; CI always does).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const SURFACE_TESTS = [
  'src/surfaces',
  'src/app/doctor.test.ts',
  'src/app/daily-report.test.ts',
  'test/memory-service.test.ts',
  'test/memory-safety.test.ts',
  'test/embedding-queue.test.ts',
  'test/tiers.test.ts',
  'test/versions.test.ts',
  'test/episodes.test.ts',
  'test/write-audit.test.ts',
  'test/execution-service.test.ts',
  'test/execution-unavailable.test.ts',
  'test/execution-pool-scaling.test.ts',
];

const installed =
  fs.existsSync('/usr/lib/postgresql/15/bin/postgres') &&
  fs.existsSync('/usr/share/postgresql/15/extension/vector.control');
if (!installed) {
  const bar = '!'.repeat(78);
  console.error(`\n${bar}\n!! SKIPPING the service/MCP/HTTP tests on PostgreSQL: PostgreSQL 15 with pgvector`);
  console.error('!! is not installed. Enable them with: sudo scripts/install-services.sh');
  console.error(`${bar}\n`);
  process.exit(0);
}
const run = spawnSync('npx', ['vitest', 'run', ...SURFACE_TESTS], {
  stdio: 'inherit',
  env: { ...process.env, BRAIN_TEST_ENGINE: 'postgres' },
});
process.exit(run.status ?? 1);
