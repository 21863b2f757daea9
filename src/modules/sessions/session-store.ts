import type { RequestScope } from '../../core/scope.js';

export interface Session {
  id: string;
  project: string | null;
  client: string | null;
  created_at: string;
  last_seen_at: string;
}

/** The storage port of the sessions module; tenant-scoped and async like every port. */
export interface SessionStore {
  /** Opens a session with this id, or resumes it when it exists (then last_seen_at = now). */
  open(
    scope: RequestScope,
    session: { id: string; project: string | null; client: string | null; now: string },
  ): Promise<{ session: Session; resumed: boolean }>;
  get(scope: RequestScope, id: string): Promise<Session | null>;
}
