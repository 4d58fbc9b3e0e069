import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDynalite } from '../../src/local/services/dynalite.ts'
import { freePort, stopChild, waitForOutput } from '../../src/local/services/ports.ts'
import { startRedisServer } from '../../src/local/services/redis.ts'
import { loadConfig } from '../../src/shared/config.ts'
import { createDynamoClients, type DynamoClients } from '../../src/shared/dynamo/client.ts'
import { type DynamoProxy, startDynamoProxy } from '../../test/helpers/dynamo-proxy.ts'
import { entries } from './build.ts'
import type { Cleanup } from './cleanup.ts'
import { seedTables, TABLES } from './seed.ts'
import { type BenchServerReady, type Features, READY_MARK } from './server-protocol.ts'
import { childPids, startWatchdog } from './watchdog.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Keys the API processes accept: one read key for the measured routes, one admin key to invalidate,
 * one export key (scenario 6) and one write key (scenario 7).
 */
export const KEYS = {
  read: 'bench-read-key-00000001',
  admin: 'bench-admin-key-0000002',
  export: 'bench-export-key-000003',
  write: 'bench-write-key-0000004',
} as const
export const bearer = (scope: keyof typeof KEYS) => `Bearer ${KEYS[scope]}`

const DEFAULTS = loadConfig({})
/**
 * Export settings the API processes and the export workers are given explicitly (the product defaults),
 * so scenario 6's bare Scan uses the same segment count and page size.
 */
export const EXPORT_SETTINGS = { segments: DEFAULTS.EXPORT_SEGMENTS, pageLimit: DEFAULTS.EXPORT_PAGE_LIMIT } as const

/** One worker process (src/workers/main.ts, compiled: see lib/build.ts), started by a scenario. */
export interface WorkerProcess {
  readonly name: string
  readonly pid: number
  /** How it runs: 'compiled', or 'tsx' (with why). */
  readonly runtime: string
  /** SIGTERM (a graceful fleet close), SIGKILL after a few seconds. */
  stop(): Promise<void>
}

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
  /** dynalite itself, not through the proxy (seeding, counting, and scenario 6's both sides). */
  dynamoEndpoint: string
  /** A temporary directory removed at the end: EXPORT_DIR of the APIs and workers is `exports` in it. */
  scratchDir: string
  exportDir: string
  /**
   * Starts a real worker process (compiled src, as `npm run start:worker` runs it; tsx if the build
   * fails) with the stack's Redis, prefix, CURSOR_SECRET and EXPORT_DIR, read budget 0 (unlimited),
   * DynamoDB through the proxy unless `env` says otherwise; resolves once it serves its queues.
   * Stopped by the cleanup if the scenario does not stop it.
   */
  startWorker(name: string, env: Record<string, string>): Promise<WorkerProcess>
  /**
   * Starts one more API process (bench/server.ts) configured like `api`, with `env` on top (e.g. the
   * near cache off); resolves once it serves the page. Stopped by the cleanup.
   */
  startApi(name: string, env: Record<string, string>): Promise<ApiProcess>
  page: BenchServerReady['page']
  largePage: BenchServerReady['largePage']
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

  const scratchDir = await mkdtemp(join(tmpdir(), 'dynacache-bench-'))
  cleanup.add('scratch directory', () => rm(scratchDir, { recursive: true, force: true }))
  const exportDir = join(scratchDir, 'exports')
  // What the API processes and the workers share.
  const shared = {
    REDIS_URL: redis.url,
    DYNAMODB_ENDPOINT: proxy.endpoint,
    REDIS_PREFIX: 'bench',
    NODE_ENV: 'production',
    EXPORT_DIR: exportDir,
    EXPORT_SEGMENTS: String(EXPORT_SETTINGS.segments),
    EXPORT_PAGE_LIMIT: String(EXPORT_SETTINGS.pageLimit),
    // 0 = unlimited (the default, said explicitly): no budget may throttle what is measured.
    DYNAMO_READ_BUDGET: '0',
    // The API and the workers sign and check the same cursors and download links.
    CURSOR_SECRET: 'bench-cursor-secret-0123456789',
  }
  const common = {
    ...shared,
    API_KEYS: `${KEYS.read}:read;${KEYS.admin}:admin;${KEYS.export}:export;${KEYS.write}:write`,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
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
  return {
    api,
    apiStatsOff,
    redisUrl: redis.url,
    proxy,
    dynamo,
    dynamoEndpoint: dynalite.endpoint,
    scratchDir,
    exportDir,
    startWorker: (name, env) => startWorker(cleanup, log, name, { ...shared, ...env }),
    startApi: (name, env) => startApi(cleanup, name, { ...common, BENCH_STATS: 'on', ...env }),
    page: api.ready.page,
    largePage: api.ready.largePage,
    features: api.ready.features,
    tables: TABLES,
  }
}

export function describeRefMode(ready: BenchServerReady): string {
  return ready.refMode === 'same-instance'
    ? 'in the app itself (same hooks, auth and rate limit as the read routes)'
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

/** pino's numeric level of a JSON log line; 0 when it is not one. */
function levelOf(line: string): number {
  const match = /"level":(\d+)/.exec(line)
  return match ? Number(match[1]) : 0
}

async function startWorker(cleanup: Cleanup, log: StackLog, name: string, env: Record<string, string>): Promise<WorkerProcess> {
  const entry = await entries(log)
  // e.g. BENCH_WORKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the worker processes.
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, ...entry.worker], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      // Info, to see worker.started; past start-up only warnings and worse are passed on.
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const drop = cleanup.add(name, () => stopChild(child, 'SIGTERM', 5000))
  // The worker entry point cannot notice that this process died: a watchdog stops it then.
  if (child.pid) startWatchdog(cleanup, [child.pid])
  let partial = ''
  const onData = (c: Buffer) => {
    const lines = (partial + c.toString()).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      // Slow calls (over SLOW_CALL_MS) are expected while the benchmark saturates dynalite: not passed on.
      if (!line || line.includes('"msg":"dynamo.slow"')) continue
      if (levelOf(line) >= 40 || levelOf(line) === 0) process.stderr.write(`[${name}] ${line}\n`)
    }
  }
  await waitForOutput(child, /"worker\.started"/, name, 60_000)
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') process.stderr.write(`[${name}] exited ${signal ?? code}\n`)
  })
  return {
    name,
    pid: child.pid!,
    runtime: entry.note ? `${entry.runtime}: ${entry.note}` : entry.runtime,
    async stop() {
      await stopChild(child, 'SIGTERM', 5000)
      drop()
    },
  }
}
