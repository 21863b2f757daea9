/**
 * The storage port of the server-wide `config` table: settings an operator changes while Brain runs
 * (maintenance mode), shared by every replica through the database. Not tenant-scoped.
 */
export interface ConfigStore {
  get(key: string): Promise<{ value: string; updated_at: string } | null>;
  /** Sets a key, or deletes it with `null`. */
  set(key: string, value: string | null, now: string): Promise<void>;
}
