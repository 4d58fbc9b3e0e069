import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { SCOPES } from '../../../shared/access.ts'
import { errors } from '../../../shared/errors.ts'
import { ErrorResponse, Literals } from '../schemas.ts'

export const WhoamiResponse = Type.Object({
  scopes: Type.Array(Literals(SCOPES), { description: "the key's scopes" }),
  tenant: Type.String({ description: 'whose exports and batches the key sees' }),
  tables: Type.Union([Type.Array(Type.String()), Type.Null()], {
    description: "the key's own table globs, or null for every table the deployment exposes",
  }),
})

/**
 * GET /auth/whoami: what the presented key may do, for any valid key whatever its scopes (the console
 * signs in with it). Not a `scope` route, which would refuse keys without that scope; it resolves the
 * key itself in onRequest, so the rate limit still counts the request against the key.
 */
export default async function whoamiRoutes(app: FastifyInstance) {
  const identify = (request: FastifyRequest) => {
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    const principal = match ? app.authenticate(match[1]!) : undefined
    if (principal) {
      request.principal = principal
      request.apiKeyId = principal.id
    }
  }

  app.get(
    '/auth/whoami',
    {
      onRequest: (request, _reply, done) => {
        identify(request)
        done()
      },
      schema: {
        tags: ['auth'],
        summary: "The presented API key's scopes, tenant and table globs",
        // No `security` here: that would promise a 403 for a missing scope, and this route has none to miss.
        description:
          'Send any API key as `Authorization: Bearer <key>`: a valid one is answered whatever its scopes, anything ' +
          'else is 401. The console signs in with it, then shows and hides what the key may do.',
        response: { 200: WhoamiResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const principal = request.principal
      if (!principal) throw new errors.DC_ERR_UNAUTHORIZED()
      return {
        scopes: SCOPES.filter((s) => principal.scopes.has(s)),
        tenant: principal.tenant,
        tables: principal.tables ? [...principal.tables] : null,
      }
    },
  )
}
