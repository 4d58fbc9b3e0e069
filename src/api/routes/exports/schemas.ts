import { Type } from 'typebox'
import { EXPORT_FORMATS, EXPORT_STATUSES } from '../../../shared/exports/model.ts'
import { authErrors, ErrorResponse, TableName } from '../schemas.ts'
import { IndexName } from '../tables/schemas.ts'

export const ExportId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'export id' })
export const ExportParams = Type.Object({ id: ExportId })

export const CreateExportBody = Type.Object(
  {
    table: TableName,
    format: Type.Union(EXPORT_FORMATS.map((f) => Type.Literal(f)), { description: 'csv or jsonl' }),
    index: Type.Optional(IndexName),
    // Any JSON here, checked by the handler: an anyOf of string and array would be mangled by type coercion.
    filter: Type.Optional(
      Type.Unknown({
        description:
          'conditions ANDed as a Scan FilterExpression: an array of { attr, op, value } as in GET /tables/:table/query, ' +
          'or that array as JSON text (which keeps every digit of large numbers)',
      }),
    ),
    gzip: Type.Boolean({ default: false, description: 'gzip the file (.gz)' }),
    notify: Type.Optional(
      Type.String({ format: 'email', maxLength: 254, description: 'who gets an email when the export completes or fails' }),
    ),
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
    format: Type.Union(EXPORT_FORMATS.map((f) => Type.Literal(f))),
    gzip: Type.Boolean(),
    filter: Type.Union([Type.String(), Type.Null()], { description: 'the filter as JSON text' }),
    notify: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union(EXPORT_STATUSES.map((s) => Type.Literal(s))),
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
    status: Type.Optional(Type.Union(EXPORT_STATUSES.map((s) => Type.Literal(s)))),
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
