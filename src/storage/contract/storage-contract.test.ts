/**
 * Every port's contract on every engine in one run: SQLite always, PostgreSQL when the run has its
 * throwaway cluster (otherwise reported skipped, with the reason and how to enable it).
 */
import { ENGINES } from '../../../test/services/engines.js';
import { engineSkipReason, openStorage } from '../../../test/services/storage-harness.js';
import { runApiKeyStoreContract } from './api-key-store-contract.js';
import { runAuditStoreContract } from './audit-store-contract.js';
import { runConfigStoreContract } from './config-store-contract.js';
import { runEmbeddingQueueContract } from './embedding-queue-contract.js';
import { runEpisodeStoreContract } from './episode-store-contract.js';
import { runExecutionStoreContract } from './execution-store-contract.js';
import { runIdempotencyStoreContract } from './idempotency-store-contract.js';
import { runJobStoreContract } from './job-store-contract.js';
import { runMemoryStoreContract } from './memory-store-contract.js';
import { runQueryLogStoreContract } from './query-log-store-contract.js';
import { runSessionStoreContract } from './session-store-contract.js';
import { runTierStoreContract } from './tier-store-contract.js';

for (const engine of ENGINES) {
  const skip = engineSkipReason(engine);
  const open = async () => {
    const h = await openStorage(engine);
    return {
      ...h,
      stores: h.storage.stores(),
      store: h.storage.stores().memories,
      sessions: h.storage.stores().sessions,
    };
  };
  runMemoryStoreContract(`${engine} storage`, open, skip);
  runSessionStoreContract(`${engine} storage`, open, skip);
  runTierStoreContract(`${engine} storage`, open, skip);
  runEpisodeStoreContract(`${engine} storage`, open, skip);
  runEmbeddingQueueContract(`${engine} storage`, open, skip);
  runIdempotencyStoreContract(`${engine} storage`, open, skip);
  runConfigStoreContract(`${engine} storage`, open, skip);
  runApiKeyStoreContract(`${engine} storage`, open, skip);
  runAuditStoreContract(`${engine} storage`, open, skip);
  // With a second, separate connection to the same store (another process or replica).
  const openShared = async () => {
    const h = await openStorage(engine);
    return {
      ...h,
      stores: h.storage.stores(),
      async reopen() {
        const again = await openStorage(engine, { env: h.env, migrate: false });
        return { ...again, stores: again.storage.stores() };
      },
    };
  };
  runJobStoreContract(`${engine} storage`, openShared, skip);
  runExecutionStoreContract(`${engine} storage`, openShared, skip);
  // The driver's own slow-query log off: the contract sees only the rows it writes.
  const openQuiet = async () => {
    const h = await openStorage(engine, { settings: { BRAIN_SLOW_QUERY_MS: '0' } });
    return { ...h, stores: h.storage.stores() };
  };
  runQueryLogStoreContract(`${engine} storage`, openQuiet, skip);
}
