import { Type } from 'typebox'
import { EXPORT_FORMATS, EXPORT_STATUSES } from '../../../shared/exports/model.ts'
import { authErrors, ErrorResponse, Literals, TableName } from '../schemas.ts'
import { IndexName, QueryQuery } from '../tables/schemas.ts'

export const ExportId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'export id' })
export const ExportParams = Type.Object({ id: ExportId })

/** A query export's key condition: the parameters of GET /tables/:table/query (index and filter sit beside it). */
export const ExportQueryBody = Type.Object(
  {
    pk: QueryQuery.properties.pk,
    sk: QueryQuery.properties.sk,
    skOp: QueryQuery.properties.skOp,
    sk2: QueryQuery.properties.sk2,
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { description: 'sort-key order, asc by default' })),
  },
  { additionalProperties: false, description: 'export a Query (one partition, optional sort-key condition) instead of a Scan; runs as one segment' },
)

export const CreateExportBody = Type.Object(
  {
    table: TableName,
    format: Literals(EXPORT_FORMATS, { description: 'csv or jsonl' }),
    index: Type.Optional(IndexName),
    // Any JSON here, checked by the handler: an anyOf of string and array would be mangled by type coercion.
    filter: Type.Optional(
      Type.Unknown({
        description:
          'the filter grammar of GET /tables/:table/query (an array of { attr, op, value } ANDed, or { and | or | not } groups ' +
          'with in, size and attribute_type), or that filter as JSON text (which keeps every digit of large numbers)',
      }),
    ),
    query: Type.Optional(ExportQueryBody),
    // Any JSON here, checked by the handler (array or comma-separated text, as `fields=` on reads).
    fields: Type.Optional(
      Type.Unknown({
        description:
          'the columns, in order: document paths such as a, b.c or tags[0], as an array or comma-separated text (at most 100); ' +
          'the CSV header is exactly these paths and JSONL objects hold exactly these keys',
      }),
    ),
    gzip: Type.Boolean({ default: false, description: 'gzip the file (.gz)' }),
    notify: Type.Optional(Type.String({ format: 'email', maxLength: 254, description: 'who gets an email when the export completes or fails' })),
  },
  { additionalProperties: false },
)

const Links = Type.Object({
  self: Type.String(),
  events: Type.String({ description: 'Server-Sent Events of the progress' }),
  download: Type.String({ description: 'the file, with Bearer auth (GET /exports/:id gives a signed link)' }),
})

export const CreatedExport = Type.Object({
  id: Type.String(),
  status: Type.Literal('queued'),
  links: Links,
})

const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const ExportView = Type.Object(
  {
    id: Type.String(),
    table: Type.String(),
    index: Type.Union([Type.String(), Type.Null()]),
    format: Literals(EXPORT_FORMATS),
    gzip: Type.Boolean(),
    filter: Type.Union([Type.String(), Type.Null()], { description: 'the filter as JSON text' }),
    query: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], { description: 'the key condition of a query export, null for a Scan' }),
    fields: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'the chosen columns in order, null for every attribute' }),
    schedule: Type.Union([Type.String(), Type.Null()], { description: 'the schedule whose run made it, else null' }),
    scheduledAt: Time,
    notify: Type.Union([Type.String(), Type.Null()]),
    status: Literals(EXPORT_STATUSES),
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    processedItems: Type.Integer({ description: 'items written so far, over every segment' }),
    segments: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Time,
    completedAt: Time,
    error: Type.Union([Type.String(), Type.Null()]),
    bytes: Type.Union([Type.Integer(), Type.Null()], { description: 'size of the file once completed' }),
    download: Type.Union([Type.String(), Type.Null()], {
      description: 'signed download link (valid DOWNLOAD_LINK_TTL seconds) once completed, else null',
    }),
    links: Links,
  },
  { description: 'An export and where it stands' },
)

export const ListQuery = Type.Object(
  {
    status: Type.Optional(Literals(EXPORT_STATUSES)),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'from the previous page' })),
  },
  { additionalProperties: false },
)

export const ExportList = Type.Object({
  exports: Type.Array(ExportView),
  cursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }),
})

export const DownloadQuery = Type.Object(
  { token: Type.Optional(Type.String({ maxLength: 256, description: 'the signed token of a download link' })) },
  { additionalProperties: false },
)

export const exportErrors = { ...authErrors, 404: ErrorResponse, 503: ErrorResponse } as const
export { ErrorResponse }

export const ScheduleId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'schedule id' })
export const ScheduleParams = Type.Object({ id: ScheduleId })

const Cron = Type.String({
  minLength: 9,
  maxLength: 200,
  description: "cron pattern read by BullMQ job schedulers: 5 fields (minute hour day month weekday, e.g. '0 6 * * 1-5') or 6 with seconds first",
})
const Timezone = Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA time zone the pattern is read in, e.g. Europe/Paris' })

export const CreateScheduleBody = Type.Object(
  { cron: Cron, timezone: Timezone, ...CreateExportBody.properties },
  { additionalProperties: false, description: 'a cron pattern and time zone, and the export each run makes, as POST /exports takes it' },
)

export const ScheduleView = Type.Object(
  {
    id: Type.String(),
    cron: Type.String(),
    timezone: Type.String(),
    paused: Type.Boolean(),
    export: Type.Object({}, { additionalProperties: true, description: 'what each run exports, as POST /exports takes it' }),
    nextRunAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'null while paused' }),
    createdAt: Type.String({ format: 'date-time' }),
    links: Type.Object({ self: Type.String(), pause: Type.String(), resume: Type.String() }),
  },
  { description: 'An export schedule: each run is an ordinary export in GET /exports (its `schedule` is this id)' },
)

export const ScheduleList = Type.Object({ schedules: Type.Array(ScheduleView) })
