import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { IntegrityCheck } from '../storage-integrity.js';
import type { SqliteDatabase } from './sqlite-database.js';

/** The description saved beside each index (vector-index-file.ts writes it). */
interface SavedMeta {
  instanceId?: string;
  tenantId?: string;
  model?: string;
  seq?: number;
  size?: number;
  sha256?: string;
}

function sha256Of(file: string): string | null {
  try {
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/**
 * The saved ANN indexes in `<db>.vectors/` against the rows: each must belong to this database (its
 * instance id), match its checksum, and not be ahead of the tenant's rows (a database restored to an
 * older state). One behind the rows is stale: the next start replays the rows changed since it was
 * saved, so that is a warning, not a fault. A fault is never a wrong answer either (recall checks every
 * candidate in SQL), but the file is rebuilt at every start until `brain db reindex` removes it.
 */
export function checkSavedIndexes(db: SqliteDatabase, dir: string | null): Omit<IntegrityCheck, 'name'> {
  const metas =
    dir !== null && fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.json')) : [];
  if (metas.length === 0)
    return { status: 'ok', message: 'no saved vector index (built at start when a tenant is large)' };
  const instance = db.prepare("SELECT value FROM brain_meta WHERE key = 'instance_id'").pluck().get() as
    | string
    | undefined;
  const maxSeq = db.prepare('SELECT coalesce(max(change_seq), 0) FROM memories WHERE tenant_id = ?').pluck();
  const faults: string[] = [];
  const stale: string[] = [];
  for (const name of metas) {
    const file = path.join(dir as string, name);
    let meta: SavedMeta;
    try {
      meta = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedMeta;
    } catch {
      faults.push(`${name} is unreadable`);
      continue;
    }
    const label = `${meta.tenantId ?? '?'}/${meta.model ?? '?'}`;
    if (meta.instanceId !== instance) {
      faults.push(`${label} belongs to another database`);
      continue;
    }
    if (sha256Of(file.replace(/\.json$/, '.usearch')) !== meta.sha256) {
      faults.push(`${label} does not match its checksum`);
      continue;
    }
    const rows = maxSeq.get(meta.tenantId ?? '') as number;
    const seq = meta.seq ?? 0;
    if (seq > rows) faults.push(`${label} is ahead of the rows (saved at change ${seq}, rows at ${rows})`);
    else if (seq < rows) stale.push(`${label} saved at change ${seq}, rows at ${rows}`);
  }
  if (faults.length > 0)
    return {
      status: 'fail',
      message: `${faults.length} of ${metas.length} saved vector index(es) do not match the rows: ${faults.join('; ')}`,
      fix: 'brain db reindex (removes them; the next start rebuilds)',
    };
  if (stale.length > 0)
    return {
      status: 'warn',
      message: `${stale.length} of ${metas.length} saved vector index(es) stale: ${stale.join('; ')}; the next start replays the changes since`,
      fix: 'nothing needed; brain db reindex removes them if they should be rebuilt',
    };
  return { status: 'ok', message: `${metas.length} saved vector index(es) match the rows` };
}
