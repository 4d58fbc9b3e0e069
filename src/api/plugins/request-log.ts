import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** A query parameter name as a server would read it: `+` is a space, percent-escapes decoded (repeatedly). */
function decodedName(raw: string): string {
  let name = raw.replace(/\+/g, ' ')
  for (let i = 0; i < 4 && name.includes('%'); i++) {
    try {
      const next = decodeURIComponent(name)
      if (next === name) break
      name = next
    } catch {
      // A malformed escape: decode what can be decoded, byte by byte.
      name = name.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    }
  }
  // `to ken`, `token[]`: whatever a lenient parser might still read as the name, compared as letters and digits.
  return name.toLowerCase().replace(/[^a-z0-9_]/g, '')
}

/**
 * Signed download tokens travel in the query string; they never reach a log line. Every parameter
 * whose decoded name mentions `token` (`token`, `%74oken`, `TOKEN`, `access_token`, repeated, after
 * `&` or `;`) has its whole value replaced, however the value is encoded.
 */
export function redactUrl(url: string): string {
  const at = url.indexOf('?')
  if (at === -1) return url
  const hash = url.indexOf('#', at)
  const query = url.slice(at + 1, hash === -1 ? undefined : hash)
  const redacted = query.replace(/[^&;]+/g, (pair) => {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (!decodedName(name).includes('token')) return pair
    return eq === -1 ? '[redacted]' : `${name}=[redacted]`
  })
  return `${url.slice(0, at + 1)}${redacted}${hash === -1 ? '' : url.slice(hash)}`
}

/** The line logged for an answered request; the hit lane (src/api/hit-lane.ts) writes the same. */
export function requestLine(
  method: string,
  route: string | null,
  url: string,
  status: number,
  elapsedMs: number,
  cache: string | null,
  table: string | null,
  key: string | null,
) {
  return { msg: 'request.completed', method, route, url: redactUrl(url), status, ms: Math.round(elapsedMs * 10) / 10, cache, table, key }
}

/**
 * One log line per request, written when the answer is sent: route, status, duration, X-Cache and
 * table. Replaces Fastify's own request/response lines (the app sets disableRequestLogging). Headers
 * are never logged, so no Authorization value can leak through this line.
 */
async function requestLog(app: FastifyInstance) {
  // Callback style: an async hook would cost every answer a promise.
  app.addHook('onResponse', (request, reply, done) => {
    const warn = reply.statusCode >= 500
    // Nothing to build when the level drops the line (LOG_LEVEL=warn and a successful answer).
    const log = request.log as { isLevelEnabled?: (level: string) => boolean }
    if (log.isLevelEnabled?.(warn ? 'warn' : 'info') === false) return done()
    const xCache = reply.getHeader('x-cache')
    const line = requestLine(
      request.method,
      request.routeOptions.url ?? null,
      request.url,
      reply.statusCode,
      reply.elapsedTime,
      typeof xCache === 'string' ? xCache : null,
      (request.params as { table?: string } | undefined)?.table ?? null,
      request.apiKeyId ?? null,
    )
    if (warn) request.log.warn(line)
    else request.log.info(line)
    done()
  })
}

export default fp(requestLog, { name: 'request-log' })
