import { Type } from 'typebox'
import { ErrorResponse, Literals } from '../schemas.ts'

export const View = Type.Union([Type.Literal('document'), Type.Literal('typed')], {
  default: 'document',
  description: 'document: plain JSON, every number digit kept; typed: DynamoDB attribute-value JSON',
})
export const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'items per page' })
export const Cursor = Type.String({ minLength: 1, maxLength: 8192, description: 'opaque cursor from the previous page' })
export const Fields = Type.String({
  minLength: 1,
  maxLength: 16384,
  description: 'comma-separated document paths to return, e.g. a,b.c,tags[0] (at most 100); the key attributes are always included',
})
export const Select = Type.Literal('count', {
  description: 'count: answer { count, scannedCount, cursor } instead of items (up to 10 DynamoDB pages per request; limit, view and fields do not apply)',
})
export const Consistent = Type.Boolean({
  description: 'true: a ConsistentRead (not of a global secondary index), never answered from the cache; the answer replaces the cached entry',
})
export const IndexName = Type.String({ pattern: '^[A-Za-z0-9_.-]{3,255}$', description: 'a GSI or LSI of the table' })

export const ItemsQuery = Type.Object(
  {
    limit: Limit,
    cursor: Type.Optional(Cursor),
    index: Type.Optional(IndexName),
    fields: Type.Optional(Fields),
    select: Type.Optional(Select),
    view: View,
    consistent: Type.Optional(Consistent),
  },
  { additionalProperties: false },
)

export const ItemQuery = Type.Object(
  {
    sk: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'sort key value' })),
    fields: Type.Optional(Fields),
    view: View,
    consistent: Type.Optional(Consistent),
  },
  { additionalProperties: false },
)

export const QueryQuery = Type.Object(
  {
    pk: Type.String({ minLength: 1, maxLength: 2048, description: 'partition key value (equality)' }),
    sk: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'sort key value' })),
    skOp: Type.Optional(
      Literals(['eq', 'lt', 'le', 'gt', 'ge', 'between', 'begins_with'], {
        description: 'sort key condition',
      }),
    ),
    sk2: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'upper bound for between' })),
    index: Type.Optional(IndexName),
    filter: Type.Optional(
      Type.String({
        maxLength: 16384,
        description:
          'JSON array of conditions (ANDed), or one group. A condition is { attr, op, value } with op eq, ne, lt, le, gt, ge, begins_with, contains, exists, not_exists (no value), ' +
          'in (an array of up to 100 values) or attribute_type (S, SS, N, NS, B, BS, BOOL, NULL, L or M); add "size": true to compare the size of the attribute. ' +
          'Groups: { "or": [...] }, { "and": [...] }, { "not": condition-or-group }, nested freely; at most 20 conditions in all. Examples: ' +
          '[{"attr":"total","op":"gt","value":300}]; {"or":[{"attr":"status","op":"eq","value":"open"},{"attr":"total","op":"gt","value":300}]}; ' +
          '[{"attr":"status","op":"in","value":["open","held"]}]; {"not":{"attr":"archived","op":"exists"}}; ' +
          '[{"attr":"tags","op":"ge","size":true,"value":2}]; [{"attr":"amount","op":"attribute_type","value":"N"}]',
      }),
    ),
    order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' }),
    limit: Limit,
    cursor: Type.Optional(Cursor),
    fields: Type.Optional(Fields),
    select: Type.Optional(Select),
    view: View,
    consistent: Type.Optional(Consistent),
  },
  { additionalProperties: false },
)

/** A page of items; items are raw JSON (document or typed view), not re-validated on the way out. */
export const Page = Type.Object({
  items: Type.Array(Type.Unknown()),
  count: Type.Integer(),
  cursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }),
})

/** A `select=count` answer: items matched and items read, summed over the pages this request read. */
export const CountPage = Type.Object({
  count: Type.Integer({ description: 'items that matched (after any filter)' }),
  scannedCount: Type.Integer({ description: 'items DynamoDB read (before any filter)' }),
  cursor: Type.Union([Type.String(), Type.Null()], { description: 'continue counting from here; null when done' }),
})

/** A scan or query answer: a page of items, or a count with select=count. */
export const PageOrCount = Type.Union([Page, CountPage])

const KeyAttribute = Type.Object({
  name: Type.String(),
  type: Type.Union([Type.Literal('S'), Type.Literal('N'), Type.Literal('B')]),
})
const KeyDefinition = Type.Object({ partition: KeyAttribute, sort: Type.Optional(KeyAttribute) })

/** GET /tables/:table (documentation only: the cached bytes are sent as they are, never re-serialized). */
export const TableDetails = Type.Object(
  {
    name: Type.String(),
    status: Type.String({ description: 'DynamoDB TableStatus, e.g. ACTIVE' }),
    key: KeyDefinition,
    attributeDefinitions: Type.Array(KeyAttribute),
    indexes: Type.Array(
      Type.Object({
        name: Type.String(),
        kind: Type.Union([Type.Literal('GSI'), Type.Literal('LSI')]),
        key: KeyDefinition,
        projection: Type.Object({ type: Type.String(), nonKeyAttributes: Type.Optional(Type.Array(Type.String())) }),
        status: Type.Optional(Type.String()),
      }),
    ),
    billingMode: Type.String({ description: 'PAY_PER_REQUEST or PROVISIONED' }),
    provisionedThroughput: Type.Optional(Type.Object({ readCapacityUnits: Type.Integer(), writeCapacityUnits: Type.Integer() })),
    stream: Type.Object({ enabled: Type.Boolean(), viewType: Type.Optional(Type.String()) }),
    itemCount: Type.Integer({ description: 'as DynamoDB reports it (updated about every six hours)' }),
    sizeBytes: Type.Integer({ description: 'as DynamoDB reports it' }),
    createdAt: Type.Optional(Type.String({ format: 'date-time' })),
    arn: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
)

export const readErrors = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
  404: ErrorResponse,
  503: ErrorResponse,
} as const

/** Cached routes answer 304 to a matching If-None-Match. */
export const NotModified = Type.Null({ description: 'Not Modified (If-None-Match matched the ETag)' })
