import { Type } from 'typebox'
import { TABLE_NAME_PATTERN } from '../../shared/access.ts'

/** Schemas more than one route uses. */
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
