import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, preParsingHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Principal, Scope } from '../../shared/access.ts'
import type { ApiKeyEntry } from '../../shared/api-keys.ts'
import { errors } from '../../shared/errors.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route requires; routes without one are public (health, docs). */
    scope?: Scope
  }
  interface FastifyRequest {
    /** The caller's API key id (a hash prefix, safe to log), set once authenticated. */
    apiKeyId?: string
    /** The caller: scopes, tenant and tables; set once authenticated (see shared/access.ts). */
    principal?: Principal
    /** Why the request may not proceed (401/403); thrown by the `auth-enforce` hook, after the rate limit. */
    authFailure?: Error
  }
  interface FastifyInstance {
    /** Resolves a presented key to its principal, in constant time per configured key. */
    authenticate(presented: string): Principal | undefined
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest()

/** Upper bound of the verified-keys map; it can only hold strings that hash to a configured key anyway. */
export const VERIFIED_KEYS_MAX = 1024

/**
 * Resolves a presented key to its principal. A key proven once is remembered (at most VERIFIED_KEYS_MAX),
 * so a known key is not hashed again on every request; any other string is hashed and compared with
 * every configured key in constant time. Only a string whose sha256 equals a configured key's is
 * remembered: a wrong key never fills the map.
 */
export function createKeyCheck(keys: readonly ApiKeyEntry[], hash: (s: string) => Buffer = digest) {
  const verified = new Map<string, Principal>()
  return (presented: string): Principal | undefined => {
    const known = verified.get(presented)
    if (known) return known
    const candidate = hash(presented)
    let found: ApiKeyEntry | undefined
    // Compare against every key, always, so timing tells nothing about which key nearly matched.
    for (const key of keys) if (timingSafeEqual(key.digest, candidate)) found = key
    if (found && verified.size < VERIFIED_KEYS_MAX) verified.set(presented, found.principal)
    return found?.principal
  }
}

async function auth(app: FastifyInstance, { keys }: { keys: readonly ApiKeyEntry[] }) {
  app.decorate('authenticate', createKeyCheck(keys))

  // Identifies the caller but does not refuse yet: a wrong key must still be counted by the rate limit
  // (against the client's address), or key guessing would never be slowed down.
  app.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
    const scope = request.routeOptions.config?.scope
    if (scope) {
      const header = request.headers.authorization
      const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
      const key = match ? app.authenticate(match[1]!) : undefined
      if (!key) request.authFailure = new errors.DC_ERR_UNAUTHORIZED()
      else {
        request.apiKeyId = key.id
        request.principal = key
        if (!key.scopes.has(scope) && !key.scopes.has('admin')) request.authFailure = new errors.DC_ERR_FORBIDDEN(scope)
      }
    }
    done()
  })
}

/**
 * Refuses what `auth` found wanting (401/403). Register after the rate limit, whose hook counts the
 * request first; both run before the body is read.
 */
async function authEnforce(app: FastifyInstance) {
  const enforce: preParsingHookHandler = (request, _reply, payload, done) => {
    if (request.authFailure) done(request.authFailure)
    else done(null, payload)
  }
  // @fastify/rate-limit adds its hook to each route as the route is declared; a route-level hook added
  // by this later onRoute listener runs right after it (an app-level one would run before it).
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.config?.scope) return
    const hooks = route.preParsing
    route.preParsing = [...(Array.isArray(hooks) ? hooks : hooks ? [hooks] : []), enforce]
  })
}

export const enforceAuth = fp(authEnforce, { name: 'auth-enforce', dependencies: ['auth'] })

export default fp(auth, { name: 'auth' })
