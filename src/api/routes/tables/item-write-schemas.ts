import { Type } from 'typebox'
import { MAX_UPDATE_PATHS } from '../../../shared/dynamo/item-update.ts'
import { authErrors, ErrorResponse, Literals, TableParams } from '../schemas.ts'
import { View } from './schemas.ts'

/** How a write's values are given: the default is the shape `view=document` reads. */
export const WriteFormat = Literals(['document', 'typed'], {
  default: 'document',
  description:
    'document (default): plain JSON as `view=document` reads it; numbers are taken from the JSON text exactly (38 digits stay 38 digits), ' +
    'strings are S, booleans BOOL, null NULL, arrays L, objects M. typed: DynamoDB attribute-value JSON ({"n":{"N":"1.50"}}), for sets and binary.',
})

const Condition = Type.String({
  minLength: 1,
  maxLength: 16384,
  description:
    'Makes the write conditional: the filter grammar of reads (a JSON array of { attr, op, value } conditions, ANDed, or one and/or/not group), ' +
    'evaluated by DynamoDB against the item as it is. 412 DC_ERR_CONDITION_FAILED when it does not hold; nothing is written.',
})

export const ItemParams = Type.Object({ table: TableParams.properties.table, pk: Type.String({ minLength: 1, maxLength: 2048 }) })

export const ItemWriteQuery = Type.Object(
  {
    sk: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'sort key value' })),
    format: WriteFormat,
    condition: Type.Optional(Condition),
    view: View,
  },
  { additionalProperties: false },
)

export const ItemDeleteQuery = Type.Object(
  { sk: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'sort key value' })), condition: Type.Optional(Condition) },
  { additionalProperties: false },
)

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 1024,
      description:
        'The ETag GET /tables/:table/items/:pk answered (document or typed view, without fields), or `*`: the write happens only while the item ' +
        "is unchanged (checked with a consistent read, then pinned in the write's condition). Otherwise 412 DC_ERR_CONDITION_FAILED.",
    }),
  ),
})

export const ItemBody = Type.Object(
  {},
  {
    additionalProperties: true,
    description: "The whole item (replaces it). Key attributes may be left out (the URL gives them) or must equal the URL's.",
  },
)

const PathMap = (description: string) => Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 4096 }), Type.Unknown(), { description }))

export const PatchBody = Type.Object(
  {
    set: PathMap('document path → new value, e.g. {"status": "paid", "address.city": "Lyon", "tags[0]": "x"}'),
    remove: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { maxItems: MAX_UPDATE_PATHS, description: 'document paths to remove' })),
    add: PathMap('document path → a number to add, or an array (a set) to add elements to'),
    delete: PathMap('document path → an array (a set) of elements to remove from a set'),
    condition: Type.Optional(Type.Unknown({ description: 'as the `condition` query parameter, given as JSON (an array or a group) or as its text' })),
  },
  { additionalProperties: false },
)

export const Item = Type.Object({}, { additionalProperties: true, description: 'The item as written: document or typed view' })

export const writeErrors = {
  400: ErrorResponse,
  ...authErrors,
  404: ErrorResponse,
  412: ErrorResponse,
  413: ErrorResponse,
  503: ErrorResponse,
} as const

export const InvalidationChange = Type.Object(
  {
    key: Type.Record(Type.String(), Type.Unknown(), { description: 'exactly the primary key of the item' }),
    oldImage: Type.Optional(Type.Unknown({ description: 'the item before the write; null: it did not exist; absent: unknown (every index is invalidated)' })),
    newImage: Type.Optional(Type.Unknown({ description: 'the item after the write; null: deleted; absent: unknown' })),
  },
  { additionalProperties: false },
)

export const InvalidationBody = Type.Object(
  {
    changes: Type.Optional(
      Type.Array(InvalidationChange, {
        minItems: 1,
        maxItems: 1000,
        description: 'up to 1,000 item writes, each invalidated as precisely as its images allow',
      }),
    ),
    scope: Type.Optional(Type.Literal('table', { description: 'invalidate every entry of the table instead' })),
    mode: Type.Optional(
      Literals(['hard', 'soft'], {
        description: 'hard: the next read waits for DynamoDB; soft: served once more as STALE while a refresh is queued. Default INVALIDATION_MODE.',
      }),
    ),
    format: WriteFormat,
  },
  { additionalProperties: false },
)

export const InvalidationAnswer = Type.Object({
  invalidated: Type.Integer({ description: 'item changes applied (0 for scope table)' }),
  scope: Literals(['items', 'table']),
})
