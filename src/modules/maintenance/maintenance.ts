import fs from 'node:fs';
import type { Clock } from '../../core/clock.js';
import { BrainError, invalidInput } from '../../core/errors.js';
import type { ConfigStore } from './config-store.js';

/** The `config` row that holds maintenance mode (its value: JSON `{reason}`). */
export const MAINTENANCE_KEY = 'maintenance_mode';
/** The file in BRAIN_HOME whose presence turns maintenance mode on (its text is the reason). */
export const MAINTENANCE_FILE = 'MAINTENANCE_MODE';
/** What a refused write's Retry-After says. */
export const MAINTENANCE_RETRY_AFTER_S = 60;
const REASON_MAX = 200;
/** How long a replica trusts what it read of the row (another replica's change shows within this). */
const CACHE_MS = 1000;

export interface MaintenanceState {
  on: boolean;
  /** Where it was turned on: the `config` row (CLI, admin route) or the file in BRAIN_HOME. */
  source: 'database' | 'file' | null;
  reason: string | null;
  since: string | null;
}

const OFF: MaintenanceState = { on: false, source: null, reason: null, since: null };

/**
 * Maintenance mode: while on, writes and new sessions are refused with MAINTENANCE (HTTP 503 with
 * Retry-After) and reads keep working. On when the `maintenance_mode` row exists (every replica reads
 * it, trusting it for a second) or when `MAINTENANCE_MODE` exists in BRAIN_HOME (this machine only).
 */
export class Maintenance {
  readonly #store: ConfigStore;
  readonly #file: string;
  readonly #clock: Clock;
  #cached: { state: MaintenanceState; at: number } | null = null;

  constructor(store: ConfigStore, options: { file: string; clock: Clock }) {
    this.#store = store;
    this.#file = options.file;
    this.#clock = options.clock;
  }

  async state(): Promise<MaintenanceState> {
    const file = this.#fileState();
    if (file) return file;
    const now = Date.now();
    if (this.#cached && now - this.#cached.at < CACHE_MS) return this.#cached.state;
    const row = await this.#store.get(MAINTENANCE_KEY);
    let state = OFF;
    if (row) {
      let reason: string | null = null;
      try {
        const value = JSON.parse(row.value) as { reason?: unknown };
        reason = typeof value.reason === 'string' ? value.reason : null;
      } catch {
        reason = null;
      }
      state = { on: true, source: 'database', reason, since: row.updated_at };
    }
    this.#cached = { state, at: now };
    return state;
  }

  /** Turns the shared row on (with an optional reason) or off; the file, if present, stays in charge. */
  async set(on: boolean, reason: string | null = null): Promise<MaintenanceState> {
    if (reason !== null && reason.length > REASON_MAX)
      throw invalidInput('reason', `must be at most ${REASON_MAX} characters`);
    await this.#store.set(
      MAINTENANCE_KEY,
      on ? JSON.stringify({ reason }) : null,
      this.#clock.now().toISOString(),
    );
    this.#cached = null;
    return this.state();
  }

  /** Throws MAINTENANCE when the mode is on: `action` is what was refused, for the message. */
  async assertWritable(action: string): Promise<void> {
    const state = await this.state();
    if (!state.on) return;
    const why = state.reason ? ` (${state.reason})` : '';
    const how =
      state.source === 'file' ? `remove ${this.#file} to end it` : 'it ends with `brain maintenance off`';
    throw new BrainError(
      'MAINTENANCE',
      `Brain is in maintenance mode${why}: ${action} is refused until it ends (${how}); reads keep working. Retry later.`,
      { retry_after_seconds: MAINTENANCE_RETRY_AFTER_S, ...(state.reason ? { reason: state.reason } : {}) },
    );
  }

  /** Read at every write: a missing file is answered without an exception (its stack cost ~5% of a remember). */
  #fileState(): MaintenanceState | null {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(this.#file, { throwIfNoEntry: false });
    } catch {
      return null;
    }
    if (!stat) return null;
    let reason: string | null = null;
    try {
      reason = fs.readFileSync(this.#file, 'utf8').trim().slice(0, REASON_MAX) || null;
    } catch {
      reason = null;
    }
    return { on: true, source: 'file', reason, since: stat.mtime.toISOString() };
  }
}
