/**
 * LIMIT: a bare `node:http` process that answers every request with a precomputed Buffer of the page
 * the hit path serves (the same gzip bytes to a gzip client, the same plain bytes otherwise, a 304 to a
 * matching If-None-Match). No framework, no auth, no Redis: what Node itself can do on this machine.
 * Env: LIMIT_PORT, LIMIT_GZIP and LIMIT_PLAIN (files holding the bytes), LIMIT_ETAG; LIMIT_HEADERS
 * optionally names a JSON file of [name, value] pairs sent with every answer too (the "LIMIT, the hit's
 * headers" reference: the same response bytes the hit sends, headers included, so what is left between it
 * and the hit is the app's work per request, not Node's cost per header).
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

const env = process.env
const gzip = readFileSync(env.LIMIT_GZIP ?? '')
const plain = readFileSync(env.LIMIT_PLAIN ?? '')
const etag = env.LIMIT_ETAG ?? ''
const extra = Object.fromEntries(env.LIMIT_HEADERS ? (JSON.parse(readFileSync(env.LIMIT_HEADERS, 'utf8')) as Array<[string, string]>) : [])
const base = { ...extra, 'content-type': 'application/json; charset=utf-8', etag, vary: 'accept-encoding' }
const gzipHeaders = { ...base, 'content-encoding': 'gzip', 'content-length': String(gzip.length) }
const plainHeaders = { ...base, 'content-length': String(plain.length) }

const server = createServer((req, res) => {
  const inm = req.headers['if-none-match']
  if (inm !== undefined && (inm === etag || inm === `W/${etag}`)) {
    res.writeHead(304, base).end()
    return
  }
  const ae = req.headers['accept-encoding']
  if (ae?.includes('gzip')) res.writeHead(200, gzipHeaders).end(gzip)
  else res.writeHead(200, plainHeaders).end(plain)
})
server.keepAliveTimeout = 60_000
server.listen(Number(env.LIMIT_PORT), '127.0.0.1', () => process.stdout.write('LIMIT_READY\n'))
// Started with an IPC channel: when the orchestrator dies, so does this process.
process.on('disconnect', () => process.exit(0))
