import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseInput } from '../../core/validation.js';
import { maintenanceEvent, rebalanceEvent } from '../../modules/audit/admin-events.js';
import type { AuditLog } from '../../modules/audit/audit-log.js';
import type { Maintenance } from '../../modules/maintenance/maintenance.js';
import { rebalanceReportSchema, type TierService } from '../../modules/memory/tier-service.js';
import { errorBodySchema } from './rest-routes.js';

const maintenanceStateSchema = z
  .object({
    on: z.boolean(),
    source: z
      .enum(['database', 'file'])
      .nullable()
      .describe('The config row, or MAINTENANCE_MODE in BRAIN_HOME.'),
    reason: z.string().nullable(),
    since: z.string().nullable(),
  })
  .describe('Maintenance mode: while on, writes and new sessions get 503 with Retry-After; reads work.');

const maintenanceBody = z
  .object({
    on: z.boolean({ error: 'must be true or false' }).describe('Turn maintenance mode on or off.'),
    reason: z
      .string({ error: 'must be a string' })
      .max(200, { message: 'must be at most 200 characters' })
      .optional()
      .describe('Said in every refusal while it is on.'),
  })
  .strict();

const rebalanceBody = z
  .object({
    tenant: z
      .string({ error: 'must be a string' })
      .regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -' })
      .optional()
      .describe('Only this tenant; default every tenant.'),
  })
  .strict();

/**
 * Admin routes under `/admin`. Maintenance mode is a row of the shared `config` table, so turning it on
 * through one replica turns it on for all (each reads the row at most a second old).
 */
export function registerAdminRoutes(
  app: FastifyInstance,
  admin: { maintenance: Maintenance; audit?: AuditLog | null; tiers?: TierService },
): void {
  const { tiers } = admin;
  if (tiers)
    app.post(
      '/admin/rebalance-memory',
      {
        config: { access: { scope: 'admin', action: 'admin.rebalance' } },
        schema: {
          tags: ['admin'],
          summary: 'Rebalance the memory tiers now',
          description:
            'Re-scores every memory and moves memories between hot, warm and cold, as the scheduled `rebalance` job does; idempotent. Without `tenant`, every tenant, recorded as a manual run of the job.',
          body: rebalanceBody.optional(),
          response: { 200: rebalanceReportSchema, 400: errorBodySchema },
        },
      },
      async (request) => {
        const body = parseInput(rebalanceBody, request.body ?? {});
        const principal = request.principal;
        const report = await tiers.rebalanceNow(
          body.tenant !== undefined ? { tenant: body.tenant } : {},
          principal?.id ?? 'local',
        );
        await admin.audit?.record(
          rebalanceEvent(principal?.id ?? 'local', principal?.tenantId ?? 'default', body.tenant, report),
        );
        return report;
      },
    );
  app.get(
    '/admin/maintenance',
    {
      config: { access: { scope: 'admin', action: 'admin.maintenance.read' } },
      schema: {
        tags: ['admin'],
        summary: 'Whether maintenance mode is on, since when and why',
        response: { 200: maintenanceStateSchema },
      },
    },
    async () => admin.maintenance.state(),
  );
  app.put(
    '/admin/maintenance',
    {
      config: { access: { scope: 'admin', action: 'admin.maintenance' } },
      schema: {
        tags: ['admin'],
        summary: 'Turn maintenance mode on or off for every replica',
        body: maintenanceBody,
        response: { 200: maintenanceStateSchema, 400: errorBodySchema },
      },
    },
    async (request) => {
      const body = parseInput(maintenanceBody, request.body ?? {});
      const state = await admin.maintenance.set(body.on, body.reason ?? null);
      const principal = request.principal;
      await admin.audit?.record(
        maintenanceEvent(principal?.id ?? 'local', principal?.tenantId ?? 'default', {
          on: body.on,
          reason: body.reason ?? null,
        }),
      );
      return state;
    },
  );
}
