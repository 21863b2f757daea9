/**
 * Opening a Brain for a benchmark: a fresh BRAIN_HOME in the temp dir, config through the real loader,
 * silent logs. Memories load with rememberMany in batches of 1,000 (the batch limit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Brain, buildBrain } from '../src/app/build-brain.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import type { CorpusMemory } from './corpus.js';

export const PROJECT = 'bench';
export const BATCH = 1000;

/** A new temp directory for one benchmark; the caller removes it. */
export function benchHome(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `brain-bench-${name}-`));
}

export function removeHome(home: string): void {
  fs.rmSync(home, { recursive: true, force: true });
}

/** The environment a benchmark Brain (in-process or spawned) runs with: one database file per home. */
export function benchEnv(home: string): Record<string, string> {
  return { BRAIN_HOME: home, BRAIN_DB_PATH: path.join(home, 'brain.db'), LOG_LEVEL: 'silent' };
}

export async function openBench(home: string, env: Record<string, string> = {}): Promise<Brain> {
  const config = requireValidConfig(loadConfig({ env: { ...benchEnv(home), ...env }, cwd: home }));
  const brain = await buildBrain(config, { logger: pino({ level: 'silent' }), migrate: true });
  // A benchmark of hybrid recall must not quietly measure text-only recall.
  const { problem } = await brain.embeddings();
  if (problem !== null) {
    await brain.close();
    throw new Error(`the bench's embedder is not working: ${problem}`);
  }
  return brain;
}

/** What loading took: ids in corpus order, the wall time, and each rememberMany call's time. */
export interface LoadResult {
  ids: string[];
  ms: number;
  callMs: number[];
}

/**
 * Loads `memories` into the bench project with rememberMany, {@link BATCH} per call. Between calls it
 * yields to the event loop, as a server does between requests, so the WAL checkpointer runs on its
 * timer; the wall time includes those turns.
 */
export async function loadMemories(brain: Brain, memories: readonly CorpusMemory[]): Promise<LoadResult> {
  const ids: string[] = [];
  const callMs: number[] = [];
  const start = performance.now();
  for (let i = 0; i < memories.length; i += BATCH) {
    const batch = memories.slice(i, i + BATCH).map((m) => ({ content: m.content, project: PROJECT }));
    const t = performance.now();
    const results = await brain.services.memory.rememberMany(brain.scope, batch);
    callMs.push(performance.now() - t);
    for (const r of results) ids.push(r.id);
    await yieldToLoop();
  }
  return { ids, ms: performance.now() - start, callMs };
}

/** Builds the tenant's vector index now, as a long-running server has it. */
export async function warmVectors(brain: Brain): Promise<number> {
  const start = performance.now();
  const embedder = brain.embedder;
  if (embedder) await brain.storage.warm(brain.scope.tenantId, embedder.model, embedder.dimensions);
  return performance.now() - start;
}

/** Lets timers (the WAL checkpointer) run between measured calls, as they do in a server. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Collects garbage when node runs with --expose-gc (npm run bench does): a phase's leftovers (the
 * loaded corpus's batches) are then not charged to the next phase's latencies.
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
