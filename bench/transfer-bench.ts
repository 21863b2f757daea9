/**
 * `node dist-bench/bench/transfer-bench.js` (after `npm run build && npx tsc -p tsconfig.bench.json`):
 * `brain import` and `brain export` of 100,000 memories with 384-d vectors, on SQLite and on PostgreSQL
 * (a throwaway cluster on 127.0.0.1 with the server's durable defaults). The import is measured whole
 * (the check pass that validates every line, then the write pass) and by phase, with the latency of each
 * written batch; the export to a file. On PostgreSQL the import runs again with the text-statistics
 * trigger (migration 6) disabled, to show what it costs. Memories in the file are synthetic rows as a
 * store holds them (tokens made by the stores' own function, unit vectors): the embedder is not measured.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { exportData, importData } from '../src/app/run-transfer.js';
import type { BrainConfig } from '../src/config/config-schema.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import { newId } from '../src/core/ids.js';
import { silentLogger } from '../src/core/logger.js';
import { contentHash } from '../src/modules/memory/content-hash.js';
import { endLine, headerLine, memoryLine } from '../src/modules/transfer/export-format.js';
import type { StoredMemory } from '../src/modules/transfer/transfer-records.js';
import { ownSearchText, speakerSearchText } from '../src/storage/sqlite/sqlite-search-text.js';
import type { TransferProgress } from '../src/surfaces/cli/transfer-commands.js';
import {
  createTestDatabase,
  type LocalPostgres,
  postgresUnavailable,
  startLocalPostgres,
} from '../test/services/local-postgres.js';
import { collectGarbage } from './bench-brain.js';
import { createRandom, generateCorpus } from './corpus.js';
import { type Figure, figure, formatTable, readRss, resetPeakRss, summarize } from './stats.js';

const MEMORIES = Number(process.env.TRANSFER_BENCH_MEMORIES ?? 100_000);
const DIMENSIONS = 384;
const TARGET = { op: '>=' as const, value: 100_000 };

/** Writes a Brain export of `count` synthetic memories to `file`, a page at a time. */
export function writeExportFile(file: string, count: number): number {
  const rand = createRandom(7);
  const { memories } = generateCorpus(count, 0);
  const fd = fs.openSync(file, 'w');
  const start = Date.parse('2025-01-01T00:00:00Z');
  try {
    fs.writeSync(
      fd,
      `${headerLine({ schema: 0, engine: 'bench', brain: 'bench', exported_at: new Date().toISOString(), filter: { tenant: null, project: null } })}\n`,
    );
    for (let i = 0; i < count; i += 1000) {
      const lines: string[] = [];
      for (let j = i; j < Math.min(count, i + 1000); j++) {
        // The corpus repeats a few sentences; a store keeps one of each, so each gets its number.
        const content = `${memories[j]?.content ?? ''} (${j})`;
        const tags = j % 3 === 0 ? ['bench', `t${j % 17}`] : [];
        const vector = new Float32Array(DIMENSIONS);
        let norm = 0;
        for (let d = 0; d < DIMENSIONS; d++) {
          vector[d] = rand() - 0.5;
          norm += (vector[d] as number) ** 2;
        }
        for (let d = 0; d < DIMENSIONS; d++) vector[d] = (vector[d] as number) / Math.sqrt(norm);
        const at = new Date(start + j * 1000).toISOString();
        const m: StoredMemory = {
          id: newId('mem', start + j * 1000),
          tenant_id: 'default',
          project: 'bench',
          session_id: null,
          key: null,
          content,
          content_hash: contentHash(content),
          type: 'fact',
          tags,
          metadata: j % 5 === 0 ? { source: 'bench', n: j } : {},
          importance: 0.5,
          storage_tier: 'hot',
          memory_score: 0.5,
          access_count: 0,
          created_at: at,
          updated_at: at,
          accessed_at: null,
          expires_at: null,
          valid_from: null,
          valid_to: null,
          superseded_by: null,
          deleted_at: null,
          search_text: ownSearchText(content, tags),
          context_text: '',
          speaker_text: speakerSearchText(content, {}),
          embedding_model: 'bench-384',
          embedding: vector,
          queued: false,
        };
        lines.push(memoryLine(m));
      }
      fs.writeSync(fd, `${lines.join('\n')}\n`);
    }
    fs.writeSync(fd, `${endLine({ memory: count })}\n`);
  } finally {
    fs.closeSync(fd);
  }
  return fs.statSync(file).size;
}

function configFor(home: string, url: string): BrainConfig {
  return requireValidConfig(
    loadConfig({
      env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', BRAIN_DATABASE_URL: url, BRAIN_EMBEDDER: 'none' },
      cwd: home,
    }),
  );
}

interface ImportFigures {
  seconds: number;
  checkSeconds: number;
  writeSeconds: number;
  batchMs: number[];
  imported: number;
  peakMb: number;
}

async function timedImport(config: BrainConfig, file: string): Promise<ImportFigures> {
  collectGarbage();
  resetPeakRss();
  const marks: { phase: string; at: number }[] = [];
  const batchMs: number[] = [];
  let lastImport = 0;
  const onProgress = (p: TransferProgress) => {
    const now = performance.now();
    if (marks.at(-1)?.phase !== p.phase) marks.push({ phase: p.phase, at: now });
    if (p.phase === 'import') {
      if (lastImport > 0 && p.done > 0) batchMs.push(now - lastImport);
      lastImport = now;
    }
  };
  const start = performance.now();
  const report = await importData(
    config,
    { file },
    { stdin: process.stdin, logger: silentLogger, onProgress },
  );
  const end = performance.now();
  const writeAt = marks.find((m) => m.phase === 'import')?.at ?? end;
  return {
    seconds: (end - start) / 1000,
    checkSeconds: (writeAt - start) / 1000,
    writeSeconds: (end - writeAt) / 1000,
    batchMs: batchMs.slice(0, -1),
    imported: report.counts.memory.imported,
    peakMb: readRss().peakMb,
  };
}

async function timedExport(
  config: BrainConfig,
  file: string,
): Promise<{ seconds: number; bytes: number; peakMb: number }> {
  collectGarbage();
  resetPeakRss();
  const stream = fs.createWriteStream(file);
  let failure: Error | null = null;
  stream.on('error', (error) => {
    failure = error;
  });
  const start = performance.now();
  const report = await exportData(config, {
    logger: silentLogger,
    output: {
      write: (chunk) =>
        new Promise((resolve, reject) => {
          if (failure) reject(failure);
          else if (stream.write(chunk)) resolve();
          else stream.once('drain', resolve);
        }),
    },
  });
  await new Promise<void>((resolve) => stream.end(resolve));
  return { seconds: (performance.now() - start) / 1000, bytes: report.bytes, peakMb: readRss().peakMb };
}

function engineFigures(
  name: string,
  imp: ImportFigures,
  exp: { seconds: number; bytes: number; peakMb: number },
): Figure[] {
  const batches = summarize(imp.batchMs);
  return [
    figure(`${name} import`, MEMORIES / imp.seconds, 'memories/s', TARGET),
    figure(`${name} import: check pass (parse + validate)`, imp.checkSeconds, 's'),
    figure(`${name} import: write pass (parse + validate + write)`, imp.writeSeconds, 's'),
    figure(`${name} import: write pass alone`, MEMORIES / imp.writeSeconds, 'memories/s'),
    figure(`${name} import batch (2,000) p50`, batches.p50, 'ms'),
    figure(`${name} import batch p95`, batches.p95, 'ms'),
    figure(`${name} import batch p99`, batches.p99, 'ms'),
    figure(`${name} import RSS peak`, imp.peakMb, 'MB'),
    figure(`${name} export`, MEMORIES / exp.seconds, 'memories/s', TARGET),
    figure(`${name} export size`, exp.bytes / 1024 / 1024, 'MiB'),
    figure(`${name} export RSS peak`, exp.peakMb, 'MB'),
  ];
}

export async function printTransferBench(): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-bench-transfer-'));
  const figures: Figure[] = [];
  let cluster: LocalPostgres | null = null;
  try {
    const file = path.join(dir, 'in.jsonl');
    const t = performance.now();
    const size = writeExportFile(file, MEMORIES);
    console.log(
      `wrote ${MEMORIES} memories (${(size / 1024 / 1024).toFixed(0)} MiB) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );

    const sqlite = configFor(path.join(dir, 'sqlite'), '');
    const sqliteImport = await timedImport(sqlite, file);
    if (sqliteImport.imported !== MEMORIES) throw new Error(`SQLite imported ${sqliteImport.imported}`);
    const sqliteExport = await timedExport(sqlite, path.join(dir, 'out-sqlite.jsonl'));
    figures.push(...engineFigures('sqlite', sqliteImport, sqliteExport));

    const missing = postgresUnavailable();
    if (missing) console.log(`PostgreSQL skipped: ${missing}`);
    else {
      cluster = await startLocalPostgres({ durable: true });
      const pgConfig = configFor(path.join(dir, 'pg'), createTestDatabase(cluster.baseUrl, 'transfer'));
      const pgImport = await timedImport(pgConfig, file);
      if (pgImport.imported !== MEMORIES) throw new Error(`PostgreSQL imported ${pgImport.imported}`);
      const pgExport = await timedExport(pgConfig, path.join(dir, 'out-pg.jsonl'));
      figures.push(...engineFigures('postgres', pgImport, pgExport));

      // The same import with the text-statistics trigger off: the difference is what the trigger costs.
      const bare = createTestDatabase(cluster.baseUrl, 'transfer_bare');
      const bareConfig = configFor(path.join(dir, 'pg-bare'), bare);
      const { createStorage } = await import('../src/storage/create-storage.js');
      const storage = await createStorage(bareConfig, { logger: silentLogger });
      await storage.migrate();
      await storage.close();
      const client = new pg.Client({ connectionString: bare });
      await client.connect();
      await client.query('ALTER TABLE memories DISABLE TRIGGER memories_term_deltas_insert');
      await client.end();
      const bareImport = await timedImport(bareConfig, file);
      figures.push(
        figure(
          'postgres write pass, statistics trigger off',
          MEMORIES / bareImport.writeSeconds,
          'memories/s',
        ),
        figure(
          'postgres statistics trigger share of the write pass',
          (100 * (pgImport.writeSeconds - bareImport.writeSeconds)) / pgImport.writeSeconds,
          '%',
        ),
      );
    }
  } finally {
    cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    formatTable(
      `export and import of ${MEMORIES.toLocaleString('en-US')} memories (${DIMENSIONS}-d vectors)`,
      figures,
    ),
  );
  return figures;
}

if (process.argv[1]?.endsWith('transfer-bench.js')) await printTransferBench();
