import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { parseApiKeys, type Scope } from '../../shared/access.ts'
import { errors } from '../../shared/errors.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route requires; routes without one are public (health, docs). */
    scope?: Scope
  }
  interface FastifyRequest {
    /** The caller's API key id (a hash prefix, safe to log), set once authenticated. */
    apiKeyId?: string
  }
  interface FastifyInstance {
    /** Resolves a presented key to its scopes, in constant time per configured key. */
    authenticate(presented: string): { id: string; scopes: ReadonlySet<Scope> } | undefined
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest()

async function auth(app: FastifyInstance, opts: { apiKeys: string }) {
  const keys = [...parseApiKeys(opts.apiKeys)].map(([key, scopes]) => ({
    digest: digest(key),
    id: digest(key).toString('hex').slice(0, 12),
    scopes,
  }))

  app.decorate('authenticate', (presented: string) => {
    const candidate = digest(presented)
    let found: (typeof keys)[number] | undefined
    // Compare against every key, always, so timing tells nothing about which key nearly matched.
    for (const key of keys) if (timingSafeEqual(key.digest, candidate)) found = key
    return found && { id: found.id, scopes: found.scopes }
  })

  app.addHook('onRequest', async (request: FastifyRequest) => {
    const scope = request.routeOptions.config?.scope
    if (!scope) return
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    const key = match ? app.authenticate(match[1]!) : undefined
    if (!key) throw errors.DC_ERR_UNAUTHORIZED()
    request.apiKeyId = key.id
    if (!key.scopes.has(scope) && !key.scopes.has('admin')) throw errors.DC_ERR_FORBIDDEN(scope)
  })
}

export default fp(auth, { name: 'auth' })
