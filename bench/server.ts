/**
 * The API as `npm run bench` runs it: the real app from buildApp(), plus reference routes registered
 * into that same app (BuildOptions.routes), so they pass through the same plugins and hooks as the real
 * routes (security headers, auth with the same read key, rate limit, metrics, request log). The
 * comparison therefore isolates what the cache itself costs on a hit.
 * GET /bench/ceiling sends a precomputed Buffer of the same page (the ceiling);
 * GET /bench/naive does Redis GET + gunzip + JSON.parse + reply with the object (the naive design);
 * GET /bench/naive-1000 does the same with a 1,000-item page of the same table (its cost grows with size);
 * GET /bench/redis-bytes does Redis GET + send the stored gzip as is (for scale);
 * GET /bench/gc answers the time this process has spent in garbage collection so far (the bench reads it
 * around a run, to tell a GC-bound mode from a busy machine).
 *
 * Env: the API's own (loadConfig 'api'), plus BENCH_STATS=on|off, BENCH_TABLE, BENCH_LIMIT,
 * BENCH_API_KEY (a key with read scope).
 */

import { PerformanceObserver } from 'node:perf_hooks'
import { gunzipSync } from 'node:zlib'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/api/app.ts'
import { acceptsGzip, etagMatches } from '../src/api/cached-reply.ts'
import { loadConfig } from '../src/shared/config.ts'
import { type BenchServerReady, READY_MARK } from './lib/server-protocol.ts'

const env = process.env
const config = loadConfig(env, 'api')
const stats = env.BENCH_STATS !== 'off'
const table = env.BENCH_TABLE ?? 'bench_hot'
const limit = Number(env.BENCH_LIMIT ?? 100)
const apiKey = env.BENCH_API_KEY ?? ''
const NAIVE_KEY = `${config.REDIS_PREFIX}:bench:naive-page`
const NAIVE_LARGE_KEY = `${config.REDIS_PREFIX}:bench:naive-page-1000`
const LARGE = 1000

/** Same scope as the read routes, so auth runs on the reference routes too. */
const READ = { config: { scope: 'read' as const } }
let page: Page | undefined
const app: FastifyInstance = await buildApp(config, {
  ...(stats ? {} : { cache: { stats: false } }),
  routes: async (instance) => referenceRoutes(instance, () => page!),
})

interface Page {
  url: string
  plain: Buffer
  gzip: Buffer
  etag: string
  items: number
}

/** The page exactly as the hit path sends it: plain bytes, stored gzip bytes, ETag. */
async function loadPage(size = limit): Promise<Page> {
  const url = `/tables/${table}/items?limit=${size}`
  const auth = { authorization: `Bearer ${apiKey}` }
  const plain = await app.inject({ url, headers: auth })
  if (plain.statusCode !== 200) throw new Error(`GET ${url}: ${plain.statusCode} ${plain.body.slice(0, 300)}`)
  const gz = await app.inject({ url, headers: { ...auth, 'accept-encoding': 'gzip' } })
  if (gz.statusCode !== 200 || gz.headers['content-encoding'] !== 'gzip' || gz.headers['x-cache'] !== 'HIT') {
    throw new Error(`GET ${url} (gzip): ${gz.statusCode}, encoding ${gz.headers['content-encoding']}, x-cache ${gz.headers['x-cache']}`)
  }
  if (!gunzipSync(gz.rawPayload).equals(plain.rawPayload)) throw new Error(`GET ${url}: gzip and plain bodies differ`)
  const items = (JSON.parse(plain.body) as { count: number }).count
  return { url, plain: plain.rawPayload, gzip: gz.rawPayload, etag: String(gz.headers.etag), items }
}

/** A route answers when a request without credentials gets anything but our 404 (401: it exists). */
async function routeExists(method: 'POST', url: string): Promise<boolean> {
  const res = await app.inject({ method, url, payload: {} })
  return !(res.statusCode === 404 && res.body.includes('"DC_ERR_NOT_FOUND"'))
}

// Every GC pause of this process, as perf_hooks reports them (the main thread's time in the collector).
const gc = { ms: 0, count: 0 }
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.ms += entry.duration
    gc.count++
  }
}).observe({ entryTypes: ['gc'] })

function referenceRoutes(instance: FastifyInstance, current: () => Page) {
  instance.get('/bench/gc', READ, async () => gc)

  instance.get('/bench/ceiling', READ, async (request, reply) => {
    const page = current()
    if (etagMatches(request.headers['if-none-match'], page.etag)) return reply.code(304).send()
    reply.header('content-type', 'application/json; charset=utf-8')
    if (acceptsGzip(request.headers['accept-encoding'])) return reply.header('content-encoding', 'gzip').send(page.gzip)
    return reply.send(page.plain)
  })

  // The least a Redis-backed hit can do: one GET, the stored gzip bytes sent as they are (for scale only).
  instance.get('/bench/redis-bytes', READ, async (_request, reply) => {
    const stored = await app.redis.getBuffer(NAIVE_KEY)
    if (!stored) throw new Error('page missing from Redis')
    return reply.header('content-type', 'application/json; charset=utf-8').header('content-encoding', 'gzip').send(stored)
  })

  // gunzipSync, not the thread pool: the cheaper choice for 20 KB, so the naive figure is not understated.
  instance.get('/bench/naive', READ, async () => {
    const stored = await app.redis.getBuffer(NAIVE_KEY)
    if (!stored) throw new Error('naive page missing from Redis')
    return JSON.parse(gunzipSync(stored).toString('utf8')) as unknown
  })

  instance.get('/bench/naive-1000', READ, async () => {
    const stored = await app.redis.getBuffer(NAIVE_LARGE_KEY)
    if (!stored) throw new Error('naive 1,000-item page missing from Redis')
    return JSON.parse(gunzipSync(stored).toString('utf8')) as unknown
  })
}

page = await loadPage()
await app.redis.set(NAIVE_KEY, page.gzip)
// Also caches the 1,000-item page, so the hit path has it too (scenario 1 compares both sizes).
const large = await loadPage(LARGE)
await app.redis.set(NAIVE_LARGE_KEY, large.gzip)
const features = {
  exports: await routeExists('POST', '/exports'),
  batches: await routeExists('POST', `/tables/${table}/batches`),
}

const grace = closeWithGrace({ delay: 5000, logger: app.log }, async ({ err }) => {
  if (err) app.log.error({ msg: 'bench.server.crashed', err })
  await app.close()
})
// The orchestrator holds an IPC channel open: when it dies, even by SIGKILL, so does this process.
process.on('disconnect', () => grace.close())

await app.listen({ port: config.PORT, host: config.HOST })

const ready: BenchServerReady = {
  pid: process.pid,
  refMode: 'same-instance',
  refPort: config.PORT,
  stats,
  page: { url: page.url, items: page.items, bytes: page.plain.length, gzipBytes: page.gzip.length, etag: page.etag },
  largePage: { url: large.url, items: large.items, bytes: large.plain.length, gzipBytes: large.gzip.length, etag: large.etag },
  features,
}
process.stdout.write(`${READY_MARK}${JSON.stringify(ready)}\n`)
