import cors from '@fastify/cors'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

export interface SecurityOptions {
  /** CORS_ORIGINS: comma-separated origins, `*` for any, empty for no CORS at all. */
  corsOrigins: string
}

/** Body limit for authenticated routes that take no body: enough for an empty JSON object, no more. */
export const NO_BODY_LIMIT = 1024

/** Headers a dashboard on another origin needs to read from our answers. */
const EXPOSED_HEADERS = [
  'etag',
  'age',
  'cache-control',
  'cache-status',
  'x-cache',
  'content-disposition',
  'retry-after',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-request-id',
]
const ALLOWED_HEADERS = ['authorization', 'content-type', 'if-none-match', 'cache-control', 'idempotency-key', 'last-event-id']

export function parseOrigins(spec: string): string[] {
  return spec
    .split(',')
    .map((o) => o.trim().replace(/\/$/, ''))
    .filter(Boolean)
}

const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    directives: {
      // Swagger UI and Bull Board load only their own scripts; styles are inline and fonts may be remote.
      'connect-src': ["'self'"],
      // The API is often reached over plain HTTP inside a private network; upgrading would break /docs there.
      'upgrade-insecure-requests': null,
    },
  },
}

/**
 * What every answer carries: the headers a JSON API needs (OWASP REST Security cheat sheet). A JSON
 * body is never rendered as a page, so helmet's page headers would only add ~1 KB to every answer.
 */
export const API_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
})

/** Where HTML is served (Swagger UI, Bull Board, the console): these routes get helmet's page headers. */
export const HTML_PREFIXES = ['/docs', '/admin/queues', '/console'] as const

export const servesHtml = (url: string) => HTML_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`))

/**
 * Helmet's headers, computed once. They depend on nothing in the request, and building them per
 * request (as @fastify/helmet does) cost a cache hit about a fifth of its time.
 */
export function securityHeaders(options: HelmetOptions = HELMET_OPTIONS): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: string) => {
      headers[name.toLowerCase()] = value
    },
    removeHeader: () => {},
  }
  helmet(options)({} as never, res as never, () => {})
  return headers
}

/**
 * Security headers (API_HEADERS on every answer, helmet's on the routes that serve HTML), CORS for
 * dashboards on other origins, and small body limits on routes that take no body. Register before
 * auth, so even a 401 carries these headers.
 */
async function security(app: FastifyInstance, opts: SecurityOptions) {
  const origins = parseOrigins(opts.corsOrigins)
  const html = securityHeaders()
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(API_HEADERS)
    done()
  })
  // Route-level, so it runs after the app-level hook above and replaces its CSP with the page one.
  const htmlHeaders = (_request: unknown, reply: { headers(h: Record<string, string>): unknown }, done: () => void) => {
    reply.headers(html)
    done()
  }
  if (origins.length > 0) {
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : origins,
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      // Bearer keys, not cookies: browsers need no credentials mode.
      credentials: false,
      maxAge: 600,
    })
  }
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.config?.scope && !route.schema?.body && route.bodyLimit === undefined) route.bodyLimit = NO_BODY_LIMIT
    if (servesHtml(route.url)) {
      const hooks = route.onRequest
      route.onRequest = [htmlHeaders as never, ...(Array.isArray(hooks) ? hooks : hooks ? [hooks] : [])]
    }
  })
}

export default fp(security, { name: 'security' })
