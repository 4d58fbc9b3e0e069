import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { DEFAULT_TENANT, type Principal } from '../../../shared/access.ts'
import { errors } from '../../../shared/errors.ts'
import { checkCron, createExportSchedules, type ExportSchedule, validateExport } from '../../../shared/exports/index.ts'
import { assertFilterSize } from '../../../shared/quotas/filter-size.ts'
import { CreateScheduleBody, ErrorResponse, exportErrors, ScheduleList, ScheduleParams, ScheduleView } from './schemas.ts'

const selfOf = (id: string) => `/exports/schedules/${encodeURIComponent(id)}`

/**
 * Export schedules (scope export): a cron pattern and time zone run by a BullMQ job scheduler, each tick
 * an ordinary export through the create path of POST /exports. A tenant sees and manages only its own.
 */
export default async function scheduleRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const schedules = createExportSchedules({ redis: app.redis, keys: app.keys, queue: () => app.queues.queue('export-schedule') })
  const tenantOf = (principal: Principal | undefined) => principal?.tenant ?? DEFAULT_TENANT

  /** The schedule, or 404 when there is none, when it is another tenant's or its table is hidden from the caller. */
  async function load(principal: Principal | undefined, id: string): Promise<ExportSchedule> {
    const found = await schedules.get(id)
    if (!found || found.tenant !== tenantOf(principal) || !app.tableVisible(principal, found.export.table)) throw new errors.DC_ERR_SCHEDULE_NOT_FOUND(id)
    return found
  }

  async function view(s: ExportSchedule) {
    const next = await schedules.nextRun(s)
    const self = selfOf(s.id)
    return {
      id: s.id,
      cron: s.cron,
      timezone: s.timezone,
      paused: s.paused,
      export: s.export,
      nextRunAt: next === null ? null : new Date(next).toISOString(),
      createdAt: new Date(s.createdAt).toISOString(),
      links: { self, pause: `${self}/pause`, resume: `${self}/resume` },
    }
  }

  app.post(
    '/exports/schedules',
    {
      config: { scope: 'export' },
      schema: {
        tags: ['exports'],
        summary: 'Schedule an export: a cron pattern and time zone, the export definition and an optional email',
        description:
          'Checks the pattern, the time zone and the export definition as POST /exports does before anything is stored (400 DC_ERR_VALIDATION for a cron that does not parse or an unknown time zone). ' +
          "Each run is an ordinary export of the schedule's tenant in GET /exports, under the tenant's export quota (a refused run is logged and skipped).",
        body: CreateScheduleBody,
        response: { 201: ScheduleView, 400: ErrorResponse, ...exportErrors },
      },
    },
    async (request, reply) => {
      const { cron, timezone, ...definition } = request.body
      checkCron(cron, timezone)
      assertFilterSize(definition.filter, app.config.FILTER_MAX_BYTES)
      app.assertTableVisible(request.principal, definition.table)
      validateExport(await app.cache.describe(definition.table), definition, app.config.FILTER_MAX_BYTES)
      const schedule: ExportSchedule = {
        id: randomUUID(),
        tenant: tenantOf(request.principal),
        cron,
        timezone,
        export: definition,
        paused: false,
        createdAt: Date.now(),
        ...(request.apiKeyId ? { createdBy: request.apiKeyId } : {}),
      }
      await schedules.create(schedule)
      request.log.info({ msg: 'export.schedule.created', scheduleId: schedule.id, tenant: schedule.tenant, cron, timezone, table: definition.table })
      return reply
        .code(201)
        .header('location', selfOf(schedule.id))
        .send(await view(schedule))
    },
  )

  app.get(
    '/exports/schedules',
    {
      config: { scope: 'export' },
      schema: { tags: ['exports'], summary: "The caller's tenant's export schedules, oldest first", response: { 200: ScheduleList, ...exportErrors } },
    },
    async (request) => {
      const own = (await schedules.list(tenantOf(request.principal))).filter((s) => app.tableVisible(request.principal, s.export.table))
      return { schedules: await Promise.all(own.map(view)) }
    },
  )

  app.get(
    '/exports/schedules/:id',
    {
      config: { scope: 'export' },
      schema: { tags: ['exports'], summary: 'An export schedule', params: ScheduleParams, response: { 200: ScheduleView, ...exportErrors } },
    },
    async (request) => view(await load(request.principal, request.params.id)),
  )

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/exports/schedules/:id/${action}`,
      {
        config: { scope: 'export' },
        schema: {
          tags: ['exports'],
          summary: action === 'pause' ? 'Pause a schedule: no run starts until it is resumed' : 'Resume a paused schedule from its next tick',
          params: ScheduleParams,
          response: { 200: ScheduleView, ...exportErrors },
        },
      },
      async (request) => {
        const found = await load(request.principal, request.params.id)
        const updated = found.paused === (action === 'pause') ? found : await schedules.setPaused(found, action === 'pause')
        request.log.info({ msg: `export.schedule.${action}d`, scheduleId: found.id, tenant: found.tenant })
        return view(updated)
      },
    )
  }

  app.delete(
    '/exports/schedules/:id',
    {
      config: { scope: 'export' },
      schema: {
        tags: ['exports'],
        summary: 'Delete a schedule (its past runs stay in the export history)',
        params: ScheduleParams,
        response: { 204: { type: 'null', description: 'deleted' }, ...exportErrors },
      },
    },
    async (request, reply) => {
      const found = await load(request.principal, request.params.id)
      await schedules.remove(found)
      request.log.info({ msg: 'export.schedule.deleted', scheduleId: found.id, tenant: found.tenant })
      return reply.code(204).send(null)
    },
  )
}
