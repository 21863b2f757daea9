import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import { PgDatabases } from '../../../test/services/pg-store-fixture.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { PgChangeVersions } from './pg-change-versions.js';
import { migratePostgres } from './pg-migrations.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const databases = new PgDatabases();
afterEach(() => databases.closeAll());

describe.skipIf(skip)(label('PostgreSQL change tokens'), () => {
  it('gives each tenant asked for a new token before the bump resolves, coalescing concurrent bumps, from two replicas at once', async () => {
    const url = newPostgresDatabase();
    const [one, two] = [databases.open(url), databases.open(url)];
    await migratePostgres(one);
    const statements: string[] = [];
    one.observe({ observe: (text) => statements.push(text) });
    const tokens = [new PgChangeVersions(one, silentLogger), new PgChangeVersions(two, silentLogger)];
    const tenants = ['a', 'b', 'c', 'd', 'e'];
    expect(await tokens[0]?.read('a')).toBe('-');
    for (let round = 0; round < 5; round++) {
      const before = await Promise.all(tenants.map((t) => tokens[1]?.read(t)));
      // 40 writers of both replicas ask at once, each for one tenant: each sees its tenant's new token.
      await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const t = tenants[i % tenants.length] as string;
          const own = tokens[i % 2] as PgChangeVersions;
          await own.bump([t]);
          expect(await (tokens[(i + 1) % 2] as PgChangeVersions).read(t)).not.toBe(
            before[i % tenants.length],
          );
        }),
      );
      const after = await Promise.all(tenants.map((t) => tokens[0]?.read(t)));
      expect(new Set(after).size).toBe(tenants.length);
    }
    const bumps = statements.filter((s) => s.startsWith('INSERT INTO memory_change_versions'));
    // Twenty bumps of replica one a round, sent as far fewer statements (one in flight, the rest in the next).
    expect(bumps.length).toBeGreaterThan(0);
    expect(bumps.length).toBeLessThan(5 * 20);
  });

  it('logs a failed bump and resolves: the change it follows is committed and must not be reported as failed', async () => {
    const url = newPostgresDatabase();
    const db = databases.open(url);
    await migratePostgres(db);
    const lines: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (_fields, msg) => void lines.push(msg ?? '') };
    const tokens = new PgChangeVersions(db, logger);
    await db.query('DROP TABLE memory_change_versions', [], db.primary);
    await expect(tokens.bump(['a'])).resolves.toBeUndefined();
    expect(lines.join('')).toContain('could not record a change in memory_change_versions');
  });
});
