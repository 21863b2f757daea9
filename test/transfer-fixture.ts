/**
 * Stores for the export/import tests: a config on either engine (a SQLite file in a temp home, or a
 * fresh database of the run's PostgreSQL cluster), a store filled with what an export must carry, and
 * an export read back into records.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { expect } from 'vitest';
import { type Brain, buildBrain } from '../src/app/build-brain.js';
import { exportData, importData } from '../src/app/run-transfer.js';
import { canonical, canonicalVersion } from '../src/app/store-copy.js';
import type { BrainConfig } from '../src/config/config-schema.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import { silentLogger } from '../src/core/logger.js';
import { createApiKey } from '../src/modules/auth/api-keys.js';
import type { ExportRecord } from '../src/modules/transfer/export-format.js';
import { readExport } from '../src/modules/transfer/read-export.js';
import type { StorageEngine } from '../src/storage/storage.js';
import type { ImportRequest } from '../src/surfaces/cli/transfer-commands.js';
import { newPostgresDatabase } from './services/engines.js';

export class TransferHomes {
  readonly #dirs: string[] = [];

  dir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-transfer-'));
    this.#dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const d of this.#dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
}

/** A store's config on `engine`, in a new home. */
export function storeConfig(homes: TransferHomes, engine: StorageEngine): BrainConfig {
  const home = homes.dir();
  const url = engine === 'postgres' ? newPostgresDatabase('transfer') : '';
  return requireValidConfig(
    loadConfig({ env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', BRAIN_DATABASE_URL: url }, cwd: home }),
  );
}

export function openBrain(config: BrainConfig): Promise<Brain> {
  return buildBrain(config, { logger: pino({ level: 'silent' }), migrate: true });
}

/** What `fill` wrote that a test checks after a round trip. */
export interface Filled {
  /** The working key of the store it was made in. */
  key: string;
}

/**
 * A store with what an export must carry: memories with vectors (tagged, keyed, in a session and a
 * project, in a second tenant), a soft-forgotten and a purged one, a session, an API key and a revoked
 * one, and the audit events of all of it.
 */
export async function fill(config: BrainConfig): Promise<Filled> {
  const brain = await openBrain(config);
  try {
    const m = brain.services.memory;
    const scope = brain.scope;
    await m.rememberMany(scope, [
      { content: 'The staging database listens on port 5433', tags: ['infra', 'db'] },
      { content: 'Alice prefers green tea', key: 'drink', type: 'preference', importance: 0.9 },
      { content: 'We chose PostgreSQL for the replicas', session: 'ses-1', project: 'brain' },
      { content: 'The replicas follow the primary within a second', session: 'ses-1', project: 'brain' },
      { content: 'Metadata survives', metadata: { b: 1, a: { z: [1, 'two'], y: null } } },
    ]);
    // A version: the state an update replaced (memory_history), with its metadata's key order.
    const listed = await m.list(scope, { tags: ['db'] });
    await m.update(scope, {
      id: listed.items[0]?.id,
      importance: 0.8,
      metadata: { z: 1, a: { c: 2, b: 3 } },
    });
    await m.update(scope, { id: listed.items[0]?.id, tags: ['infra', 'db', 'ports'] });
    const soft = await m.remember(scope, { content: 'a memory to forget' });
    await m.forget(scope, { id: soft.id });
    const hard = await m.remember(scope, { content: 'a secret to purge' });
    await m.forget(scope, { id: hard.id, hard: true });
    await m.remember({ tenantId: 't2', principal: 'local' }, { content: 'Tenant two keeps its own notes' });
    await brain.services.sessions.init(scope, { session_id: 'ses-1', project: 'brain' });
    const keys = brain.storage.stores().apiKeys;
    const now = brain.clock.now();
    const { key } = await createApiKey(
      keys,
      { tenantId: 'default', scopes: ['read', 'write'], name: 'ci' },
      now,
    );
    const old = await createApiKey(keys, { tenantId: 't2', scopes: ['admin'] }, now);
    await keys.revoke(old.record.id, now.toISOString());
    await brain.audit.flush();
    return { key };
  } finally {
    await brain.close();
  }
}

/** An export of the store as text, and its report. */
export async function exportText(config: BrainConfig, filter: { tenant?: string; project?: string } = {}) {
  let text = '';
  const report = await exportData(config, {
    ...filter,
    output: {
      write: async (chunk) => {
        text += chunk;
      },
    },
    logger: silentLogger,
  });
  return { text, report };
}

export async function exportFile(
  config: BrainConfig,
  homes: TransferHomes,
  filter: { tenant?: string; project?: string } = {},
) {
  const { text, report } = await exportText(config, filter);
  const file = path.join(homes.dir(), 'export.jsonl');
  fs.writeFileSync(file, text);
  return { file, text, report };
}

export function importFile(config: BrainConfig, file: string, request: Omit<ImportRequest, 'file'> = {}) {
  return importData(config, { file, ...request }, { stdin: process.stdin, logger: silentLogger });
}

/** The records of an export's text, by kind. */
export async function recordsOf(text: string) {
  const all: ExportRecord[] = [];
  await readExport([text], (r) => {
    all.push(...r);
  });
  const of = <K extends ExportRecord['kind']>(kind: K) =>
    all.filter((r) => r.kind === kind).map((r) => r.record as Extract<ExportRecord, { kind: K }>['record']);
  return {
    memories: of('memory'),
    versions: of('memory_version'),
    sessions: of('session'),
    keys: of('api_key'),
    events: of('audit_event'),
  };
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    na += (a[i] as number) ** 2;
    nb += (b[i] as number) ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

/**
 * The target holds everything the source did, canonically equal (store copy's form, plus the search
 * tokens and the vectors' direction); its keys are the source's, revoked; its only extra audit events
 * are the imports' own.
 */
export function expectSameData(
  source: Awaited<ReturnType<typeof recordsOf>>,
  target: Awaited<ReturnType<typeof recordsOf>>,
): void {
  expect(target.memories.map(canonical)).toEqual(source.memories.map(canonical));
  target.memories.forEach((t, i) => {
    const s = source.memories[i];
    expect([t.search_text, t.context_text, t.speaker_text]).toEqual([
      s?.search_text,
      s?.context_text,
      s?.speaker_text,
    ]);
    if (s?.embedding) expect(cosine(s.embedding, t.embedding as Float32Array)).toBeGreaterThan(0.999);
  });
  expect(target.versions.map(canonicalVersion)).toEqual(source.versions.map(canonicalVersion));
  expect(target.sessions).toEqual(source.sessions);
  expect(target.keys.map((k) => ({ ...k, revokedAt: null }))).toEqual(
    source.keys.map((k) => ({ ...k, revokedAt: null })),
  );
  for (const [i, k] of target.keys.entries())
    expect(k.revokedAt).toEqual(source.keys[i]?.revokedAt ?? expect.any(String));
  expect(target.events.filter((e) => e.action !== 'admin.import')).toEqual(source.events);
}
