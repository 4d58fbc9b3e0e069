import { DescribeTableCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createTablePolicy, type Principal } from '../../shared/access.ts'
import { errors } from '../../shared/errors.ts'
import { safeReason } from '../../shared/safe-message.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** True when TABLES_ALLOW / TABLES_DENY let the API expose this table. */
    tableAllowed(table: string): boolean
    /** Throws DC_ERR_TABLE_NOT_FOUND, the same for a denied table as for a missing one. */
    assertTableAllowed(table: string): void
    /**
     * True when the deployment exposes the table and the caller's key may see it. Every route that
     * names a table asks this on every request, before the cache: an entry another key (or another
     * deployment sharing the Redis) filled is never served to a caller who may not see the table.
     */
    tableVisible(principal: Principal | undefined, table: string): boolean
    /** Throws DC_ERR_TABLE_NOT_FOUND unless tableVisible: a hidden table answers as a missing one. */
    assertTableVisible(principal: Principal | undefined, table: string): void
    /** Asks DynamoDB (uncached) that a table visible to the caller exists; for rare, admin-side calls. */
    assertTableExists(table: string, principal?: Principal): Promise<void>
  }
}

async function tablesPolicy(app: FastifyInstance) {
  const allowed = createTablePolicy(app.config.TABLES_ALLOW, app.config.TABLES_DENY)
  app.decorate('tableAllowed', allowed)
  app.decorate('assertTableAllowed', (table: string) => {
    if (!allowed(table)) throw new errors.DC_ERR_TABLE_NOT_FOUND(table)
  })
  // No principal (a signed download link) means the deployment policy alone; routes with a scope always have one.
  const visible = (principal: Principal | undefined, table: string) => allowed(table) && (principal?.canSee(table) ?? true)
  app.decorate('tableVisible', visible)
  app.decorate('assertTableVisible', (principal: Principal | undefined, table: string) => {
    if (!visible(principal, table)) throw new errors.DC_ERR_TABLE_NOT_FOUND(table)
  })
  app.decorate('assertTableExists', async (table: string, principal?: Principal) => {
    app.assertTableVisible(principal, table)
    try {
      await app.dynamo.raw.send(new DescribeTableCommand({ TableName: table }))
    } catch (err) {
      if (err instanceof ResourceNotFoundException) throw new errors.DC_ERR_TABLE_NOT_FOUND(table)
      throw new errors.DC_ERR_DYNAMO_UNAVAILABLE(safeReason(err), { cause: err })
    }
  })
}

export default fp(tablesPolicy, { name: 'tables-policy', dependencies: ['connections'] })
