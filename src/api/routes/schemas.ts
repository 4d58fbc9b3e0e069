import { type TLiteral, type TLiteralValue, type TSchemaOptions, type TUnion, Type } from 'typebox'
import { TABLE_NAME_PATTERN } from '../../shared/access.ts'

/** Schemas more than one route uses. */

type LiteralTypes<T extends readonly TLiteralValue[]> = T extends readonly [infer Head extends TLiteralValue, ...infer Rest extends readonly TLiteralValue[]]
  ? [TLiteral<Head>, ...LiteralTypes<Rest>]
  : []

/**
 * A union of literals, one per value: the same JSON Schema as `Type.Union(values.map(Type.Literal))`, but
 * its static type is the union of the values (a union of a mapped array would be `never`).
 */
export const Literals = <const T extends readonly TLiteralValue[]>(values: T, options?: TSchemaOptions): TUnion<LiteralTypes<T>> =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    options,
  ) as unknown as TUnion<LiteralTypes<T>>

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ pattern: '^DC_ERR_' }),
    error: Type.String(),
    message: Type.String(),
  },
  { $id: 'Error', description: 'Every error answer' },
)

export const TableName = Type.String({ pattern: TABLE_NAME_PATTERN, description: 'a DynamoDB table name' })
export const TableParams = Type.Object({ table: TableName })

/** Error responses a route with auth can give, for its schema. */
export const authErrors = { 401: ErrorResponse, 403: ErrorResponse } as const
