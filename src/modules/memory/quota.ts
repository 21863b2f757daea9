import type { Clock } from '../../core/clock.js';
import { BrainError } from '../../core/errors.js';
import type { RequestScope } from '../../core/scope.js';
import type { MemoryStore } from './memory-store.js';

/** Per-tenant limits (0 = none), as BRAIN_QUOTA_MEMORIES and BRAIN_QUOTA_BYTES. */
export interface QuotaLimits {
  memories: number;
  bytes: number;
}

/** What a service asks before it adds memories: throws QUOTA_EXCEEDED when they would not fit. */
export interface QuotaGate {
  assertRoom(scope: RequestScope, add: { memories: number; bytes: number }): Promise<void>;
}

/** How long a tenant's usage read from the store is trusted (writes of this process are added to it). */
const USAGE_TTL_MS = 2000;

/**
 * The tenant quotas. Usage is read from the store (a count over the tenant's rows) at most every two
 * seconds and what this process adds meanwhile is counted on top, so a quota holds within what other
 * replicas write in those two seconds. A write that would pass a quota fails whole, naming the quota,
 * what the tenant holds and what it asked for.
 */
export class TenantQuota implements QuotaGate {
  readonly #store: Pick<MemoryStore, 'usage'>;
  readonly #limits: QuotaLimits;
  readonly #clock: Clock;
  readonly #usage = new Map<string, { memories: number; bytes: number; until: number }>();

  constructor(store: Pick<MemoryStore, 'usage'>, limits: QuotaLimits, clock: Clock) {
    this.#store = store;
    this.#limits = limits;
    this.#clock = clock;
  }

  get enabled(): boolean {
    return this.#limits.memories > 0 || this.#limits.bytes > 0;
  }

  async assertRoom(scope: RequestScope, add: { memories: number; bytes: number }): Promise<void> {
    if (!this.enabled) return;
    const now = this.#clock.now().getTime();
    let usage = this.#usage.get(scope.tenantId);
    if (!usage || usage.until <= now) {
      const read = await this.#store.usage(scope);
      usage = { ...read, until: now + USAGE_TTL_MS };
      this.#usage.set(scope.tenantId, usage);
    }
    const { memories, bytes } = this.#limits;
    if (memories > 0 && usage.memories + add.memories > memories)
      throw new BrainError(
        'QUOTA_EXCEEDED',
        `tenant ${scope.tenantId} holds ${usage.memories} memories; adding ${add.memories} would pass its quota of ${memories} (BRAIN_QUOTA_MEMORIES); forget some first`,
        { quota: 'memories', limit: memories, used: usage.memories, requested: add.memories },
      );
    if (bytes > 0 && usage.bytes + add.bytes > bytes)
      throw new BrainError(
        'QUOTA_EXCEEDED',
        `tenant ${scope.tenantId} holds ${usage.bytes} bytes; adding ${add.bytes} would pass its quota of ${bytes} (BRAIN_QUOTA_BYTES); forget some first`,
        { quota: 'bytes', limit: bytes, used: usage.bytes, requested: add.bytes },
      );
    usage.memories += add.memories;
    usage.bytes += add.bytes;
  }
}
