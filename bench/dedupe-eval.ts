/**
 * `npm run bench -- dedupe-eval`: false-merge and missed-merge rates of near-duplicate detection on the
 * hand-written labelled pairs (src/modules/eval/dedupe-pairs.ts), for every embedding provider that
 * loads here, at a sweep of thresholds, at the provider's default (DEDUPE_THRESHOLDS) and at the lowest
 * threshold that keeps false merges under 1%. A provider that cannot load is listed with its reason.
 */
import pino from 'pino';
import { embedderSettings } from '../src/app/build-brain.js';
import type { BrainConfig } from '../src/config/config-schema.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import { createEmbedder } from '../src/modules/embeddings/create-embedder.js';
import { EMBEDDER_PROVIDERS } from '../src/modules/embeddings/embedder.js';
import { dedupeRates, pairSimilarities, safestThreshold } from '../src/modules/eval/dedupe-eval.js';
import { DEDUPE_PAIRS } from '../src/modules/eval/dedupe-pairs.js';
import { rewordedForm } from '../src/modules/memory/content-hash.js';
import { DEDUPE_THRESHOLDS } from '../src/modules/memory/dedupe-policy.js';
import type { Figure } from './stats.js';

const SWEEP = [0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995];

/**
 * Why a provider is not run here: a remote endpoint is measured only when BRAIN_EMBEDDING_URL points at
 * this machine (a local OpenAI-compatible server); benchmarks send nothing to any other address.
 */
function offlineReason(provider: string, config: BrainConfig): string | null {
  if (provider !== 'openai') return null;
  const url = config.embeddingUrl;
  if (!url)
    return 'BRAIN_EMBEDDING_URL is not set (set it to a local OpenAI-compatible server to measure one)';
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]'
    ? null
    : `BRAIN_EMBEDDING_URL ${url} is not on this machine; benchmarks call 127.0.0.1 only`;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export async function printDedupeEval(): Promise<Figure[]> {
  const config = requireValidConfig(loadConfig({ env: { ...process.env, LOG_LEVEL: 'silent' } }));
  const logger = pino({ level: 'silent' });
  const same = DEDUPE_PAIRS.filter((p) => p.same).length;
  console.log(
    `\ndedupe eval: ${DEDUPE_PAIRS.length} hand-written pairs (${same} paraphrases, ${DEDUPE_PAIRS.length - same} look-alikes)`,
  );
  // Rewordings (BRAIN_DEDUPE_REWORDED, on by default): no embedder, the same for every provider.
  const rewordings = DEDUPE_PAIRS.map((p) => rewordedForm(p.a) === rewordedForm(p.b));
  const reworded = dedupeRates(
    DEDUPE_PAIRS,
    rewordings.map((r) => (r ? 1 : 0)),
    1,
  );
  console.log(
    `rewordings (default, any provider): false merge ${pct(reworded.falseMerge)}, missed merge ${pct(reworded.missedMerge)}`,
  );
  console.log(`threshold sweep: ${SWEEP.join(' ')} (false merge / missed merge)`);
  for (const provider of EMBEDDER_PROVIDERS) {
    const offline = offlineReason(provider, config);
    if (offline) {
      console.log(`${provider.padEnd(16)} not run: ${offline}`);
      continue;
    }
    // Models from BRAIN_MODELS_PATH only: a benchmark never downloads (nor sends anything off this machine).
    const settings = { ...embedderSettings(config), allowRemoteModels: false };
    const { embedder, problem } = await createEmbedder(provider, settings, logger);
    if (!embedder) {
      console.log(`${provider.padEnd(16)} not run: ${problem ?? 'no embedder'}`);
      continue;
    }
    try {
      const sims = await pairSimilarities(embedder, DEDUPE_PAIRS);
      const sweep = SWEEP.map((t) => {
        const r = dedupeRates(DEDUPE_PAIRS, sims, t);
        return `${t}: ${pct(r.falseMerge)}/${pct(r.missedMerge)}`;
      });
      const threshold = DEDUPE_THRESHOLDS[provider];
      // What the default merges: rewordings, and near-duplicates at the provider's threshold if it has one.
      const merged = sims.map((s, i) => (rewordings[i] ? 2 : s));
      const d = dedupeRates(DEDUPE_PAIRS, merged, threshold ?? 2);
      const s = safestThreshold(DEDUPE_PAIRS, sims);
      console.log(`${provider.padEnd(16)} (${embedder.model})`);
      console.log(`  sweep    ${sweep.join('  ')}`);
      console.log(
        `  default  ${threshold === null ? 'rewordings, near-duplicates off' : `rewordings and ${threshold}`}: false merge ${pct(d.falseMerge)}, missed merge ${pct(d.missedMerge)}`,
      );
      console.log(
        s.threshold > 1
          ? '  lowest with false merge < 1%: none up to 1.0'
          : `  lowest with false merge < 1%: ${s.threshold}: false ${pct(s.falseMerge)}, missed ${pct(s.missedMerge)}`,
      );
    } catch (error) {
      console.log(`${provider.padEnd(16)} failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      await embedder.close?.();
    }
  }
  return [];
}
