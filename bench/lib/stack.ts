import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startDynalite } from '../../src/local/services/dynalite.ts'
import { freePort, stopChild, waitForOutput } from '../../src/local/services/ports.ts'
import { startRedisServer } from '../../src/local/services/redis.ts'
import { createDynamoClients, type DynamoClients } from '../../src/shared/dynamo/client.ts'
import { type DynamoProxy, startDynamoProxy } from '../../test/helpers/dynamo-proxy.ts'
import type { Cleanup } from './cleanup.ts'
import { seedTables, TABLES } from './seed.ts'
import { type BenchServerReady, type Features, READY_MARK } from './server-protocol.ts'
import { childPids, startWatchdog } from './watchdog.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Keys the API processes accept: one read key for the measured routes, one admin key to invalidate. */
export const KEYS = { read: 'bench-read-key-00000001', admin: 'bench-admin-key-0000002' } as const
export const bearer = (scope: keyof typeof KEYS) => `Bearer ${KEYS[scope]}`

/** One API process (bench/server.ts). */
export interface ApiProcess {
  readonly name: string
  readonly pid: number
  /** http://127.0.0.1:<port> of the API. */
  readonly baseUrl: string
  /** Where /bench/ceiling and /bench/naive answer (the API's own address in same-instance mode). */
  readonly refUrl: string
  readonly ready: BenchServerReady
}

export interface BenchStack {
  /** Statistics on (the default configuration); used by every scenario but the stats comparison. */
  api: ApiProcess
  /** Statistics off; the second process of the stampede and the other side of the stats comparison. */
  apiStatsOff: ApiProcess
  redisUrl: string
  /** Counts every DynamoDB call the APIs make (they reach dynalite only through it). */
  proxy: DynamoProxy
  /** Clients that talk to DynamoDB through the proxy, configured like the API's. */
  dynamo: DynamoClients
  page: BenchServerReady['page']
  features: Features
  tables: typeof TABLES
}

type StackLog = (line: string) => void

/** Starts Redis, dynalite, the counting proxy, seeds both tables, then the two API processes. */
export async function startStack(cleanup: Cleanup, pageItems: number, log: StackLog): Promise<BenchStack> {
  // dynalite accepts any credentials; the SDK only needs some to sign with.
  process.env.AWS_ACCESS_KEY_ID ??= 'local'
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local'
  const t0 = performance.now()
  const [redis, dynalite] = await Promise.all([startRedisServer(), startDynalite({ cwd: ROOT })])
  cleanup.add('redis-server', () => redis.stop())
  cleanup.add('dynalite', () => dynalite.stop())
  startWatchdog(cleanup, childPids())
  const proxy = await startDynamoProxy(dynalite.endpoint)
  cleanup.add('dynamo proxy', () => proxy.close())
  log(`redis ${redis.url}, dynalite ${dynalite.endpoint}, proxy ${proxy.endpoint}`)

  const seeder = createDynamoClients({ DYNAMODB_ENDPOINT: dynalite.endpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 10_000 })
  try {
    await seedTables(seeder.raw)
  } finally {
    seeder.close()
  }
  const dynamo = createDynamoClients({ DYNAMODB_ENDPOINT: proxy.endpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 3000 })
  cleanup.add('dynamo clients', () => dynamo.close())
  log(`seeded ${Object.values(TABLES).join(', ')} in ${Math.round(performance.now() - t0)} ms`)

  const common = {
    REDIS_URL: redis.url,
    DYNAMODB_ENDPOINT: proxy.endpoint,
    REDIS_PREFIX: 'bench',
    API_KEYS: `${KEYS.read}:read;${KEYS.admin}:admin`,
    CURSOR_SECRET: 'bench-cursor-secret-0123456789',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    // Entries must stay fresh for the whole run: a stale hit would queue refreshes nobody serves.
    TABLE_ITEMS_TTL: '86400',
    TABLE_DETAILS_TTL: '86400',
    // The per-key rate limit still runs (and costs what it costs) but never refuses the load we send.
    RATE_LIMIT_PER_MIN: '1000000000',
    BENCH_TABLE: TABLES.hot,
    BENCH_LIMIT: String(pageItems),
    BENCH_API_KEY: KEYS.read,
  }
  // Sequential: the second process finds the page cached by the first, and they do not fight for CPU.
  const api = await startApi(cleanup, 'api (stats on)', { ...common, BENCH_STATS: 'on' })
  const apiStatsOff = await startApi(cleanup, 'api (stats off)', { ...common, BENCH_STATS: 'off' })
  log(`APIs ready in ${Math.round(performance.now() - t0)} ms total; reference routes: ${describeRefMode(api.ready)}`)
  return { api, apiStatsOff, redisUrl: redis.url, proxy, dynamo, page: api.ready.page, features: api.ready.features, tables: TABLES }
}

export function describeRefMode(ready: BenchServerReady): string {
  return ready.refMode === 'same-instance'
    ? 'on the API instance'
    : 'second Fastify instance in the API process (buildApp returns a ready instance); hooks of the app (security headers, rate limit, metrics, request log) do not run on them'
}

async function startApi(cleanup: Cleanup, name: string, env: Record<string, string>): Promise<ApiProcess> {
  const [port, refPort] = [await freePort(), await freePort()]
  // e.g. BENCH_API_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the API processes.
  const nodeArgs = (process.env.BENCH_API_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import=tsx', 'bench/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      ...env,
      PORT: String(port),
      BENCH_REF_PORT: String(refPort),
    },
    // The IPC channel lets the child notice when this process dies, whatever the signal.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  cleanup.add(name, () => stopChild(child, 'SIGTERM', 3000))
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  await waitForOutput(child, new RegExp(`^${READY_MARK}.*\\n`, 'm'), name, 60_000)
  const line = output.split('\n').find((l) => l.startsWith(READY_MARK))!
  const ready = JSON.parse(line.slice(READY_MARK.length)) as BenchServerReady
  // Past start-up, stop buffering; anything it logs (warnings and worse) goes to our stderr.
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.removeAllListeners('data')
    stream.on('data', (c: Buffer) => process.stderr.write(`[${name}] ${c}`))
  }
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') process.stderr.write(`[${name}] exited ${signal ?? code}\n`)
  })
  return {
    name,
    pid: child.pid!,
    baseUrl: `http://127.0.0.1:${port}`,
    refUrl: `http://127.0.0.1:${ready.refPort}`,
    ready,
  }
}
