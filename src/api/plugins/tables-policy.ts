import { DescribeTableCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createTablePolicy } from '../../shared/access.ts'
import { errors } from '../../shared/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** True when TABLES_ALLOW / TABLES_DENY let the API expose this table. */
    tableAllowed(table: string): boolean
    /** Throws DC_ERR_TABLE_NOT_FOUND, the same for a denied table as for a missing one. */
    assertTableAllowed(table: string): void
    /** Asks DynamoDB (uncached) that an allowed table exists; for rare, admin-side calls. */
    assertTableExists(table: string): Promise<void>
  }
}

async function tablesPolicy(app: FastifyInstance) {
  const allowed = createTablePolicy(app.config.TABLES_ALLOW, app.config.TABLES_DENY)
  app.decorate('tableAllowed', allowed)
  app.decorate('assertTableAllowed', (table: string) => {
    if (!allowed(table)) throw errors.DC_ERR_TABLE_NOT_FOUND(table)
  })
  app.decorate('assertTableExists', async (table: string) => {
    app.assertTableAllowed(table)
    try {
      await app.dynamo.raw.send(new DescribeTableCommand({ TableName: table }))
    } catch (err) {
      if (err instanceof ResourceNotFoundException) throw errors.DC_ERR_TABLE_NOT_FOUND(table)
      throw new errors.DC_ERR_DYNAMO_UNAVAILABLE((err as Error).name, { cause: err })
    }
  })
}

export default fp(tablesPolicy, { name: 'tables-policy', dependencies: ['connections'] })
