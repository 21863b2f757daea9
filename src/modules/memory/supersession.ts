import { invalidInput } from '../../core/errors.js';

/**
 * Refuses a write's `supersedes` (INVALID_INPUT naming `field`) unless it names a live memory of the
 * tenant (`live`) not superseded yet (`supersededBy` empty) and not named by another write of the batch
 * (`named`, which this adds to). The service checks first, naming each write's place in its batch; both
 * drivers check again inside the write transaction, with the row they read and lock there.
 */
export function supersedable(
  field: string,
  id: string,
  supersededBy: string | null | undefined,
  live: boolean,
  named: Set<string>,
): void {
  if (!live) throw invalidInput(field, `no live memory ${id}: it was never written, forgotten or expired`);
  if (supersededBy)
    throw invalidInput(field, `memory ${id} was superseded by ${supersededBy} already: supersede that one`);
  if (named.has(id)) throw invalidInput(field, `memory ${id} is superseded twice in one batch`);
  named.add(id);
}
