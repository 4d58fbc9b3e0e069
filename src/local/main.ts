import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, loadConfigOrExit } from '../shared/config.ts'
import { type AppName, type AppProcess, startApp, waitForHealth } from './app-processes.ts'
import { formatBanner, type ServiceLine } from './banner.ts'
import { apiKeysSpec, loadOrCreateDevKeys } from './dev-keys.ts'
import { friendlyPort, isFree } from './friendly-port.ts'
import { isStackProcess, relayToOwnProcessGroup } from './process-group.ts'
import { runtimeNotice, SDK_WARNING_SWITCH } from './runtime-notice.ts'
import { seedDemoTables } from './seed.ts'
import { startDynalite } from './services/dynalite.ts'
import { startEmbeddedRedis } from './services/redis.ts'
import { startSes } from './services/ses.ts'
import { acquireStackLock, StackBusyError, type StackLock } from './stack-lock.ts'

const DATA_DIR = '.data'
const DYNAMO_DIR = join(DATA_DIR, 'dynamodb')
const EXPORT_DIR = './.data/exports'
const KEYS_FILE = join(DATA_DIR, 'dev-keys.json')
// dynalite's child process resolves the package from here, whatever directory the user is in.
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Ports people remember (DynamoDB Local's 8000), used when free. */
const FRIENDLY_PORTS = { api: 3000, dynamo: 8000, ses: 8005 } as const

interface LocalEnvironment {
  /** The user's environment minus empty values: passed to the API and worker, and wins over ours. */
  env: Record<string, string>
  redisUrl?: string
  dynamoEndpoint?: string
  sesEndpoint?: string
  portSet: boolean
}

/** The only place the local stack reads process.env: what the user configured is used, not embedded. */
function readLocalEnvironment(): LocalEnvironment {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value) env[key] = value
  return {
    env,
    redisUrl: env.REDIS_URL,
    dynamoEndpoint: env.DYNAMODB_ENDPOINT,
    sesEndpoint: env.SES_ENDPOINT,
    portSet: env.PORT !== undefined,
  }
}

interface Service extends ServiceLine {
  embedded: boolean
  stop(): Promise<void>
}

const given = (url: string, variable: string): Promise<Service> => Promise.resolve({ url, source: `from ${variable}`, embedded: false, stop: async () => {} })

const say = (line: string) => process.stdout.write(`dynacache: ${line}\n`)

async function runStack(): Promise<void> {
  const local = readLocalEnvironment()
  // Seeding uses the SDK in this process too: one line here instead of its warning in every process.
  process.env[SDK_WARNING_SWITCH] ??= 'true'
  const notice = runtimeNotice()
  if (notice) say(notice)
  const config = loadConfigOrExit('local', local.env)

  const apps: AppProcess[] = []
  let lock: StackLock | undefined
  const services: Array<Promise<Service> | undefined> = []
  const aborter = new AbortController()
  let stopping = false

  /** Stops the API and worker first (they still need Redis to finish), then SES, dynalite and Redis. */
  const stop = async (code: number, why?: string) => {
    if (stopping) return say('still stopping...')
    stopping = true
    aborter.abort()
    if (why) process.stderr.write(`dynacache: ${why}\n`)
    if (!lock) process.exit(code)
    await lock.markStopping()
    say('stopping the local stack...')
    await Promise.all(apps.map((app) => app.stop(config.SHUTDOWN_TIMEOUT_MS + 2000)))
    const [redis, dynamo, ses] = services
    for (const service of [ses, dynamo, redis]) {
      const started = await service?.catch(() => undefined)
      await started?.stop().catch((err: Error) => process.stderr.write(`dynacache: ${started.url}: ${err.message}\n`))
    }
    await lock.release()
    say('stopped')
    process.exit(code)
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0))
  // The relaying parent is gone (killed, or its terminal closed): nobody is left to press Ctrl-C.
  process.on('disconnect', () => void stop(0))
  const onAppExit = (name: AppName, code: number | null, signal: NodeJS.Signals | null) => {
    if (!stopping) void stop(1, `the ${name} process exited unexpectedly (${signal ?? `exit code ${code}`}); stopping everything`)
  }

  try {
    await mkdir(DATA_DIR, { recursive: true })
    lock = await acquireStackLock(DATA_DIR, {
      onWait: (pid) => say(`waiting for the previous local stack (pid ${pid}) to finish stopping...`),
    })
  } catch (err) {
    if (!(err instanceof StackBusyError)) throw err
    process.stderr.write(`dynacache: ${err.message}\n`)
    process.exit(1)
  }

  try {
    if (!local.dynamoEndpoint) await mkdir(DYNAMO_DIR, { recursive: true })
    if (!local.env.EXPORT_DIR) await mkdir(EXPORT_DIR, { recursive: true })
    const { devKeys, generated } = await loadOrCreateDevKeys(KEYS_FILE)
    say(`${generated ? 'generated dev API keys in' : 'using the dev API keys in'} ${KEYS_FILE}`)

    services.push(
      local.redisUrl
        ? given(local.redisUrl, 'REDIS_URL')
        : startEmbeddedRedis().then((r) => ({
            url: r.url,
            source: 'embedded',
            embedded: true,
            stop: r.stop,
          })),
      local.dynamoEndpoint
        ? given(local.dynamoEndpoint, 'DYNAMODB_ENDPOINT')
        : friendlyPort(FRIENDLY_PORTS.dynamo)
            .then((port) => startDynalite({ path: resolve(DYNAMO_DIR), port, cwd: PACKAGE_ROOT }))
            .then((d) => ({
              url: d.endpoint,
              source: `embedded dynalite, data in ${DYNAMO_DIR}`,
              embedded: true,
              stop: d.stop,
            })),
      local.sesEndpoint
        ? given(local.sesEndpoint, 'SES_ENDPOINT')
        : friendlyPort(FRIENDLY_PORTS.ses)
            .then((port) => startSes({ port }))
            .then((s) => ({
              url: s.endpoint,
              source: 'embedded aws-ses-v2-local',
              embedded: true,
              stop: s.stop,
            })),
    )
    const [redis, dynamo, ses] = (await Promise.all(services)) as [Service, Service, Service]

    const demo = dynamo.embedded
      ? await seedLocalDynamo(dynamo.url, config.AWS_REGION, aborter.signal)
      : 'Demo tables: not seeded (DYNAMODB_ENDPOINT is set; only the embedded dynalite gets them).'

    const port = local.portSet ? config.PORT : await friendlyPort(FRIENDLY_PORTS.api)
    // A port the user chose that another program holds: name the variable that moves it.
    if (local.portSet && !(await isFree(port))) throw new Error(`port ${port} is taken by another program: set PORT to a free port`)
    aborter.signal.throwIfAborted()
    const env: Record<string, string> = {
      NODE_ENV: 'development',
      PORT: String(port),
      REDIS_URL: redis.url,
      DYNAMODB_ENDPOINT: dynamo.url,
      SES_ENDPOINT: ses.url,
      API_KEYS: apiKeysSpec(devKeys),
      CURSOR_SECRET: devKeys.cursorSecret,
      EXPORT_DIR,
      // The stand-ins accept any credentials; the AWS SDK only needs some to sign with.
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      [SDK_WARNING_SWITCH]: 'true',
      ...local.env,
    }
    // One clear message here beats the same error from both children.
    loadConfig(env, 'api')
    apps.push(startApp('api', env, onAppExit), startApp('worker', env, onAppExit))
    await waitForHealth(`http://${probeHost(config.HOST)}:${port}`, aborter.signal)
    // Lets the API's (asynchronous) log lines about the health probe land above the banner, not under it.
    await new Promise((resolve) => setTimeout(resolve, 300))

    process.stdout.write(
      formatBanner({
        port,
        redis,
        dynamo,
        ses,
        mailViewer: ses.embedded ? ses.url : undefined,
        devKeys: local.env.API_KEYS === undefined ? devKeys : undefined,
        keysFile: KEYS_FILE,
        demo,
      }),
    )
  } catch (err) {
    if (stopping) return
    await stop(1, `could not start the local stack: ${(err as Error).message}`)
  }
}

/** Creates and fills the demo tables on the first start; later starts find them and reuse them. */
async function seedLocalDynamo(endpoint: string, region: string, signal: AbortSignal): Promise<string> {
  const started = Date.now()
  const report = await seedDemoTables(
    { endpoint, region },
    {
      signal,
      onTable: ({ table, action, items, ms }) => {
        const count = items.toLocaleString('en-US')
        if (action === 'seeding') say(`first start: filling ${table} with ${count} demo items...`)
        else if (action === 'seeded') say(`seeded ${table}: ${count} items in ${(ms / 1000).toFixed(1)} s`)
        else say(`reusing ${table} from ${DYNAMO_DIR}`)
      },
    },
  )
  const tables = 'demo-users (key userId, GSI byEmail) and demo-orders (key PK/SK, GSI byStatus)'
  return report.seeded.length > 0
    ? `Demo tables: ${tables}, seeded in ${((Date.now() - started) / 1000).toFixed(1)} s.`
    : `Demo tables: ${tables}, kept from an earlier start (delete ${DYNAMO_DIR} to reseed).`
}

/** Where this machine reaches the API: a wildcard listen address means loopback. */
function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

if (isStackProcess()) await runStack()
else relayToOwnProcessGroup()
