import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmbeddingsStandIn, startEmbeddingsStandIn } from './embeddings-stand-in.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

const open: TestBrain[] = [];
let standIn: EmbeddingsStandIn | null = null;
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
  await standIn?.close();
  standIn = null;
});

/** A Brain on the OpenAI-compatible stand-in (a remote provider: its vectors come from the queue). */
async function remoteBrain(home?: string, extra: Record<string, string> = {}) {
  standIn ??= await startEmbeddingsStandIn({ dimensions: 16 });
  const env = {
    BRAIN_EMBEDDER: 'openai',
    BRAIN_EMBEDDING_URL: standIn.url,
    BRAIN_EMBEDDING_MODEL: 'stand-in-model',
    BRAIN_EMBEDDING_DIMENSIONS: '16',
    BRAIN_EMBEDDING_TIMEOUT_MS: '2000',
    CIRCUIT_BREAKER_RESET_TIMEOUT: '200',
    ...extra,
  };
  const b = await openTestBrain('brain-queue-', { env, home });
  open.push(b);
  return b;
}

describe('background embedding queue', () => {
  it('acknowledges a write once its text is indexed and stores its vector in the background', async () => {
    const { brain } = await remoteBrain();
    standIn?.setDefault({ kind: 'status', status: 503 }); // the endpoint is down: writes must not wait for it
    const written = await brain.services.memory.remember(brain.scope, {
      content: 'The staging database listens on port 5433',
    });
    expect(written.status).toBe('created');
    const now = await brain.services.memory.recall(brain.scope, { query: 'staging database port' });
    expect(now.hits.map((h) => h.id)).toEqual([written.id]); // found by text meanwhile
    expect(now.hits[0]?.signals.vector_similarity).toBeNull();
    expect((await brain.embeddings()).queue?.backlog).toBe(1);

    standIn?.setDefault({ kind: 'ok' });
    await brain.settle();
    expect((await brain.embeddings()).queue?.backlog).toBe(0);
    const later = await brain.services.memory.recall(brain.scope, { query: 'staging database port' });
    expect(later.mode).toBe('hybrid');
    expect(later.hits[0]?.signals.vector_similarity).not.toBeNull();
  });

  it('keeps queued memories across a restart and embeds them after it', async () => {
    const first = await remoteBrain();
    standIn?.setDefault({ kind: 'status', status: 503 });
    await first.brain.services.memory.rememberMany(first.brain.scope, [
      { content: 'alpha note about gardens' },
      { content: 'beta note about boats' },
    ]);
    await first.brain.close();
    standIn?.setDefault({ kind: 'ok' });
    const second = await remoteBrain(first.home);
    expect((await second.brain.embeddings()).queue?.backlog).toBe(2);
    await second.brain.settle();
    expect((await second.brain.embeddings()).queue?.backlog).toBe(0);
  });

  it('a model change re-embeds every memory, and recall meanwhile compares only the new model', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-model-change-'));
    const hashed = await openTestBrain('x', { home, env: { BRAIN_EMBEDDER: 'hash' } });
    const ids = await hashed.brain.services.memory.rememberMany(hashed.brain.scope, [
      { content: 'the cat is named Pickles' },
      { content: 'quarterly review is in March' },
    ]);
    await hashed.brain.close();
    standIn = await startEmbeddingsStandIn({ dimensions: 16 });
    standIn.setDefault({ kind: 'status', status: 503 }); // the re-embedding cannot finish yet
    const remote = await remoteBrain(home, {});
    const status = await remote.brain.embeddings();
    expect(status.model).toBe('openai:stand-in-model:16');
    expect(status.queue?.backlog).toBe(2); // queued at start: their vectors are of another model
    // Only hash vectors exist: recall must not compare them with the new model's query vector.
    const meanwhile = await remote.brain.services.memory.recall(remote.brain.scope, { query: 'cat Pickles' });
    expect(meanwhile.hits.map((h) => h.id)).toEqual([ids[0]?.id]);
    expect(meanwhile.hits[0]?.signals.vector_similarity).toBeNull();
    standIn.setDefault({ kind: 'ok' });
    await remote.brain.settle();
    const after = await remote.brain.services.memory.recall(remote.brain.scope, { query: 'cat Pickles' });
    expect(after.hits[0]?.signals.vector_similarity).not.toBeNull();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('while the circuit is open, recall runs on text and says why', async () => {
    const { brain } = await remoteBrain(undefined, {
      CIRCUIT_BREAKER_MAX_FAILURES: '1',
      CIRCUIT_BREAKER_RESET_TIMEOUT: '60000',
    });
    standIn?.setDefault({ kind: 'status', status: 500 });
    await brain.services.memory.remember(brain.scope, { content: 'the deploy script needs Node 20' });
    const result = await brain.services.memory.recall(brain.scope, { query: 'deploy script' });
    if (result.mode === 'hybrid') throw new Error('expected text-only recall while the endpoint fails');
    // Either the query's own call failed, or the breaker had already opened on the queue's call.
    expect(['embedder-failed', 'embedder-unavailable']).toContain(result.reason);
    const again = await brain.services.memory.recall(brain.scope, { query: 'deploy script' });
    expect(again).toMatchObject({ mode: 'text-only', reason: 'embedder-unavailable' });
    expect(again.detail).toMatch(/failed|open/i);
    expect(again.hits).toHaveLength(1);
  });
});
