import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigStore } from '../../modules/maintenance/config-store.js';

export interface ConfigHarness {
  stores: { config: ConfigStore };
  close(): Promise<void>;
}

const T0 = '2026-06-01T12:00:00.000Z';
const T1 = '2026-06-01T13:00:00.000Z';

/** The storage contract of the server-wide config table, run unchanged by every driver. */
export function runConfigStoreContract(
  driver: string,
  open: () => Promise<ConfigHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`ConfigStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: ConfigHarness;
    beforeEach(async () => {
      h = await open();
    });
    afterEach(async () => {
      await h?.close();
    });

    it('sets, replaces and deletes a key', async () => {
      const config = h.stores.config;
      expect(await config.get('maintenance_mode')).toBeNull();
      await config.set('maintenance_mode', '{"reason":"upgrade"}', T0);
      expect(await config.get('maintenance_mode')).toEqual({ value: '{"reason":"upgrade"}', updated_at: T0 });
      await config.set('maintenance_mode', '{"reason":null}', T1);
      expect(await config.get('maintenance_mode')).toEqual({ value: '{"reason":null}', updated_at: T1 });
      await config.set('maintenance_mode', null, T1);
      expect(await config.get('maintenance_mode')).toBeNull();
      await config.set('maintenance_mode', null, T1); // deleting what is not there is fine
    });
  });
}
