/**
 * Shared by test/api/isolation.test.ts and test/api/differential.test.ts (issue 12): tables with one
 * key schema and overlapping keys whose items say which table (and which version) they are, a fleet of
 * real API (and worker) child processes, and a raw HTTP client that records when each request was
 * sent and answered.
 */
import { Agent, request as httpRequest } from 'node:http'
import { gunzipSync } from 'node:zlib'
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { freePort } from '../../src/local/services/ports.ts'
import { configEnv, KEYS, testConfig } from './app.ts'
import { type ChildHandle, startEntry, waitForLog } from './processes.ts'
import type { TestServices } from './services.ts'
import type { Tap } from './tap.ts'
import { waitFor } from './wait.ts'

/** Partition keys and sort keys every table holds from the start. */
export const PKS = ['p0', 'p1', 'p2', 'p3'] as const
export const SKS = [0, 1, 2, 3, 4, 5, 6, 7] as const
export const GSI = 'byG'

/** An item as the document view shows it. Its content is a function of (table, key, version) alone. */
export interface DocItem {
  pk: string
  sk: number
  tbl: string
  ver: number
  body: string
  g?: string
}

/** Every fourth version has no GSI key (the sparse index leaves it out); the others alternate g0/g1. */
export function itemContent(table: string, pk: string, sk: number, ver: number): DocItem {
  const item: DocItem = { pk, sk, tbl: table, ver, body: `${table}/${pk}/${sk}/v${ver}` }
  if (ver % 4 !== 3) item.g = `g${(ver + sk) % 2}`
  return item
}

/** The version each initial item starts at (varied, so some initial items are outside the sparse GSI). */
export const initialVersion = (sk: number) => 1 + (sk % 4)

export function typedItem(item: DocItem): Record<string, AttributeValue> {
  return {
    pk: { S: item.pk },
    sk: { N: String(item.sk) },
    tbl: { S: item.tbl },
    ver: { N: String(item.ver) },
    body: { S: item.body },
    ...(item.g !== undefined ? { g: { S: item.g } } : {}),
  }
}

/** Same key order as DocItem, so a deep comparison needs no normalising. */
export function sameItem(a: unknown, b: DocItem): boolean {
  if (typeof a !== 'object' || a === null) return false
  const o = a as Record<string, unknown>
  const keys = Object.keys(o).sort()
  const want = Object.keys(b).sort()
  if (keys.length !== want.length || keys.some((k, i) => k !== want[i])) return false
  return want.every((k) => o[k] === (b as unknown as Record<string, unknown>)[k])
}

export interface Answer {
  /** Date.now() just before the request was written, and once its body was read. */
  start: number
  end: number
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Decoded (gunzipped when Content-Encoding said gzip) body text. */
  text: string
  /** Bytes on the wire. */
  raw: Buffer
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: unknown
}

/** Every request any client of this fleet made, for bounds that need "what was in flight when". */
export interface RequestLog {
  readonly spans: Array<{ start: number; end: number }>
}

export interface ApiClient {
  readonly port: number
  request(path: string, options?: RequestOptions): Promise<Answer>
}

const REQUEST_TIMEOUT_MS = 30_000

export function createClient(port: number, log: RequestLog): ApiClient {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 })
  return {
    port,
    request(path, { method = 'GET', headers = {}, body } = {}) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
      const span = { start: Date.now(), end: Number.POSITIVE_INFINITY }
      log.spans.push(span)
      return new Promise<Answer>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path,
            method,
            agent,
            headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
          },
          (res) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('error', reject)
            res.on('end', () => {
              span.end = Date.now()
              const raw = Buffer.concat(chunks)
              let text: string
              try {
                text = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString()
              } catch (err) {
                text = `<undecodable gzip body: ${(err as Error).message}>`
              }
              resolve({ start: span.start, end: span.end, status: res.statusCode ?? 0, headers: res.headers, text, raw })
            })
          },
        )
        req.on('error', (err) => {
          span.end = Date.now()
          reject(err)
        })
        // A request that hangs fails with its name rather than as the test file's timeout.
        req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${path} on port ${port}: no answer within ${REQUEST_TIMEOUT_MS} ms`)))
        req.end(payload)
      })
    },
  }
}

export interface Fleet {
  apis: ApiClient[]
  children: ChildHandle[]
  log: RequestLog
  prefix: string
}

/**
 * Starts `apiCount` API processes (and a worker process serving only `workerQueues`, when given) as
 * real child processes sharing one Redis prefix; all are stopped at teardown.
 */
export async function startFleet(
  t: Tap,
  services: TestServices,
  overrides: Record<string, string>,
  opts: { apiCount: number; workerQueues?: string },
): Promise<Fleet> {
  const config = testConfig(services, { HOST: '127.0.0.1', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', ...overrides })
  const env = configEnv(config)
  const ports: number[] = []
  for (let i = 0; i < opts.apiCount; i++) ports.push(await freePort())
  // The APIs log at warn (a request log line per request would cost this 2-core machine more than the test).
  const children = ports.map((port) => startEntry(t, 'src/api/server.ts', { ...env, PORT: String(port) }))
  if (opts.workerQueues) children.push(startEntry(t, 'src/workers/main.ts', { ...env, LOG_LEVEL: 'info', WORKER_QUEUES: opts.workerQueues }))
  const log: RequestLog = { spans: [] }
  const apis = ports.map((port) => createClient(port, log))
  await Promise.all(
    apis.map((api, i) =>
      waitFor(
        `API process ${i} to answer /health`,
        async () => {
          if (children[i]!.child.exitCode !== null) throw new Error(`API process ${i} exited: ${children[i]!.output().slice(-2000)}`)
          return (await api.request('/health').catch(() => undefined))?.status === 200
        },
        60_000,
      ),
    ),
  )
  if (opts.workerQueues) await waitForLog(children[ports.length]!, /worker\.started/, 60_000)
  // Health probes are not reads: keep the log to the test's own requests.
  log.spans.length = 0
  return { apis, children, log, prefix: config.REDIS_PREFIX }
}

export const bearer = (scope: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[scope]}` })
