import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { ConfigSchema, loadConfig, type ProcessRole, REQUIRED_FOR } from '../../src/shared/config.ts'

/**
 * docker-compose.yml is checked statically against the config schema: no Docker engine is needed.
 * Interpolation (`${VAR:-default}`) is resolved the way Compose does it, against an empty shell
 * environment, which is what a newcomer's `docker compose up` sees.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const COMPOSE_TEXT = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>
}

type Env = Record<string, string | undefined>
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

interface Service {
  image?: string
  build?: Json
  command?: string | string[]
  environment?: Record<string, Json> | string[]
  ports?: Array<string | { target: number; published?: string | number }>
  volumes?: Array<string | { type?: string; source?: string; target: string }>
  depends_on?: string[] | Record<string, { condition?: string }>
  healthcheck?: { test?: string | string[]; disable?: boolean }
  deploy?: { replicas?: number }
  stop_grace_period?: string
}

interface ComposeFile {
  services: Record<string, Service>
  volumes?: Record<string, Json>
}

/** Variables the AWS SDK reads itself; they are not dynacache settings. */
const AWS_SDK_VARS = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'])
const KNOWN_VARS = new Set<string>([...Object.keys(ConfigSchema.properties), ...AWS_SDK_VARS, 'NODE_ENV'])
const APP_SERVICES: Array<[string, ProcessRole]> = [
  ['api', 'api'],
  ['worker', 'worker'],
]

// ---- Compose interpolation (https://docs.docker.com/reference/compose-file/interpolation/) ----

function interpolate(value: string, env: Env): string {
  let out = ''
  let i = 0
  while (i < value.length) {
    const c = value[i]!
    const next = value[i + 1]
    if (c !== '$') {
      out += c
      i++
    } else if (next === '$') {
      out += '$'
      i += 2
    } else if (next === '{') {
      let depth = 1
      let j = i + 2
      for (; j < value.length && depth > 0; j++) {
        if (value[j] === '{') depth++
        else if (value[j] === '}') depth--
      }
      if (depth !== 0) throw new Error(`unterminated \${ in ${value}`)
      out += substitute(value.slice(i + 2, j - 1), env)
      i = j
    } else {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(value.slice(i + 1))?.[0]
      if (name) {
        out += env[name] ?? ''
        i += 1 + name.length
      } else {
        out += c
        i++
      }
    }
  }
  return out
}

function substitute(body: string, env: Env): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body)
  if (!m) throw new Error(`invalid interpolation \${${body}}`)
  const name = m[1]!
  const op = m[2]
  const arg = m[3] ?? ''
  const value = env[name]
  const set = value !== undefined
  const nonEmpty = set && value !== ''
  switch (op) {
    case undefined:
      return value ?? ''
    case ':-':
      return nonEmpty ? value : interpolate(arg, env)
    case '-':
      return set ? value : interpolate(arg, env)
    case ':?':
    case '?':
      if (op === ':?' ? !nonEmpty : !set) throw new Error(`required variable ${name} is missing: ${arg}`)
      return value ?? ''
    case ':+':
      return nonEmpty ? interpolate(arg, env) : ''
    default:
      return set ? interpolate(arg, env) : ''
  }
}

function resolveAll(node: Json, env: Env): Json {
  if (typeof node === 'string') return interpolate(node, env)
  if (Array.isArray(node)) return node.map((n) => resolveAll(n, env))
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolveAll(v, env)]))
  }
  return node
}

/** The file as Compose sees it with the given shell environment (merge keys `<<:` applied). */
function loadCompose(shellEnv: Env = {}): ComposeFile {
  const doc = parse(COMPOSE_TEXT, { merge: true }) as Json
  return resolveAll(doc, shellEnv) as unknown as ComposeFile
}

/** Literal (uninterpolated) file, to look at the `${...}` expressions themselves. */
const literal = parse(COMPOSE_TEXT, { merge: true }) as ComposeFile

/** A service's environment as a map; list form `KEY=VALUE` too. A bare `KEY` (from the shell) is undefined. */
function environmentOf(service: Service | undefined): Env {
  const env = service?.environment
  if (!env) return {}
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const at = entry.indexOf('=')
        return at < 0 ? [entry, undefined] : [entry.slice(0, at), entry.slice(at + 1)]
      }),
    )
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null || v === undefined ? undefined : String(v)]))
}

function commandOf(service: Service | undefined): string[] {
  const cmd = service?.command
  if (cmd === undefined) return []
  return Array.isArray(cmd) ? cmd.map(String) : cmd.split(/\s+/).filter(Boolean)
}

function dependsOn(service: Service | undefined): Record<string, string> {
  const deps = service?.depends_on
  if (!deps) return {}
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']))
  return Object.fromEntries(Object.entries(deps).map(([name, d]) => [name, d.condition ?? 'service_started']))
}

function hasHealthcheck(service: Service | undefined): boolean {
  const hc = service?.healthcheck
  return !!hc && hc.disable !== true && hc.test !== undefined && hc.test !== 'NONE' && hc.test[0] !== 'NONE'
}

/** Named-volume mounts of a service: target path -> volume name. */
function namedMounts(service: Service | undefined): Map<string, string> {
  const mounts = new Map<string, string>()
  for (const v of service?.volumes ?? []) {
    if (typeof v === 'string') {
      const [source, target] = v.split(':')
      if (source && target && !/^[./~]/.test(source)) mounts.set(target, source)
    } else if ((v.type ?? 'volume') === 'volume' && v.source) {
      mounts.set(v.target, v.source)
    }
  }
  return mounts
}

function containerPorts(service: Service | undefined): number[] {
  return (service?.ports ?? []).map((p) => {
    if (typeof p === 'object') return Number(p.target)
    const spec = String(p).split('/')[0]!
    return Number(spec.split(':').at(-1))
  })
}

function durationMs(text: string | undefined): number {
  if (text === undefined) return 10_000 // Compose's default stop_grace_period
  let total = 0
  for (const [, n, unit] of String(text).matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s|us)/g)) {
    const factor = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 }[unit as 'h' | 'm' | 's' | 'ms' | 'us']
    total += Number(n) * factor
  }
  return total
}

const compose = loadCompose()
const { services } = compose

// ---- tests ----

t.test('the stack has redis, dynamodb, mail, api and worker', async (t) => {
  for (const name of ['redis', 'dynamodb', 'mail', 'api', 'worker']) t.ok(services[name], `service ${name}`)
  t.match(services.redis?.image, /^redis:7/)
  t.match(services.dynamodb?.image, /^amazon\/dynamodb-local:/)
  t.notOk(services.mail?.build, 'the SES stand-in builds nothing')
})

t.test('api and worker run the same image; the worker has 3 replicas', async (t) => {
  const api = services.api!
  const worker = services.worker!
  t.ok(api.build, 'api is built from the Dockerfile')
  t.equal(worker.image, api.image, 'one image for both roles')
  t.same(worker.build, api.build, 'built the same way (no pull of a local-only tag)')
  t.equal(worker.deploy?.replicas, 3)
  const apiCommand = commandOf(api)
  t.ok(apiCommand.length === 0 || apiCommand.join(' ') === pkg.scripts['start:api'], 'api runs the image default (node dist/api/server.js)')
  t.equal(commandOf(worker).join(' '), pkg.scripts['start:worker'], 'worker runs start:worker')
})

t.test('api and worker environments use only known variable names', async (t) => {
  for (const [name] of APP_SERVICES) {
    const env = environmentOf(literal.services[name])
    t.ok(Object.keys(env).length > 0, `${name} has an environment`)
    for (const key of Object.keys(env)) {
      t.ok(KNOWN_VARS.has(key), `${name}: ${key} is in the config schema or an AWS SDK variable`)
    }
    t.not(env.NODE_ENV, 'development', `${name}: development would need pino-pretty, absent from the image`)
  }
})

t.test('each role gets the variables the config requires for it', async (t) => {
  for (const [name, role] of APP_SERVICES) {
    const env = environmentOf(services[name])
    for (const key of REQUIRED_FOR[role]) t.ok(env[key], `${name}: ${key} is set`)
    t.ok(env.REDIS_URL, `${name}: REDIS_URL`)
  }
  const api = environmentOf(services.api)
  t.ok(api.API_KEYS, 'api: API_KEYS')
  t.ok(api.CURSOR_SECRET, 'api: CURSOR_SECRET')
  t.equal(environmentOf(services.worker).CURSOR_SECRET, api.CURSOR_SECRET, 'workers sign download links with the same secret the api verifies them with')
})

t.test('endpoints point at services of this file, on the ports they listen on', async (t) => {
  const listens: Record<string, string> = { redis: '6379', dynamodb: '8000', mail: '8005' }
  const expected: Record<string, string> = {
    REDIS_URL: 'redis',
    DYNAMODB_ENDPOINT: 'dynamodb',
    SES_ENDPOINT: 'mail',
  }
  const mailCommand = commandOf(services.mail)
  const mailPort = mailCommand[mailCommand.indexOf('--port') + 1]
  t.equal(mailPort, listens.mail, 'the SES stand-in listens on 8005')
  t.ok(mailCommand.includes('aws-ses-v2-local') || mailCommand.some((c) => c.startsWith('aws-ses-v2-local@')))
  t.notOk(commandOf(services.dynamodb).includes('-port'), 'DynamoDB Local keeps its default port 8000')
  t.notOk(commandOf(services.redis).includes('--port'), 'Redis keeps its default port 6379')
  for (const [name] of APP_SERVICES) {
    const env = environmentOf(services[name])
    for (const [key, service] of Object.entries(expected)) {
      const value = env[key]
      if (!t.ok(value, `${name}: ${key} is set`)) continue
      const url = new URL(value!)
      t.ok(services[url.hostname], `${name}: ${key} host ${url.hostname} is a service`)
      t.equal(url.hostname, service, `${name}: ${key} points at ${service}`)
      t.equal(url.port, listens[service], `${name}: ${key} uses port ${listens[service]}`)
    }
  }
})

t.test('with the compose defaults the config loads for each role', async (t) => {
  for (const [name, role] of APP_SERVICES) {
    const env = environmentOf(services[name])
    const config = loadConfig(env, role)
    t.equal(config.REDIS_URL, 'redis://redis:6379/0', `${name}: REDIS_URL`)
    t.equal(config.DYNAMODB_ENDPOINT, 'http://dynamodb:8000', `${name}: DYNAMODB_ENDPOINT`)
    t.equal(config.SES_ENDPOINT, 'http://mail:8005', `${name}: SES_ENDPOINT`)
    t.not(config.NODE_ENV, 'development', `${name}: NODE_ENV`)
  }
  const api = loadConfig(environmentOf(services.api), 'api')
  t.ok(api.API_KEYS && api.CURSOR_SECRET)
})

t.test('secrets come from the shell when set; the defaults are recognisably development-only', async (t) => {
  const literalApi = environmentOf(literal.services.api)
  for (const key of ['API_KEYS', 'CURSOR_SECRET']) {
    t.match(literalApi[key], new RegExp(`^\\$\\{${key}:[-?]`), `${key} is taken from the shell`)
    t.match(environmentOf(services.api)[key], /dev.*change-me|change-me.*dev/, `${key} default says dev / change-me`)
  }
  t.match(COMPOSE_TEXT, /DEVELOPMENT ONLY/, 'the file says the defaults are for development only')
  const own = {
    API_KEYS: 'prod-admin-key-0123456789:read,write,export,admin',
    CURSOR_SECRET: 'a-real-secret-of-32-characters!!',
  }
  const withShell = loadCompose(own)
  const config = loadConfig(environmentOf(withShell.services.api), 'api')
  t.equal(config.API_KEYS, own.API_KEYS)
  t.equal(config.CURSOR_SECRET, own.CURSOR_SECRET)
  t.equal(environmentOf(withShell.services.worker).CURSOR_SECRET, own.CURSOR_SECRET)
})

t.test('local AWS credentials are dummies DynamoDB Local accepts', async (t) => {
  for (const [name] of APP_SERVICES) {
    const env = environmentOf(services[name])
    for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      // DynamoDB Local 2.x+ rejects access keys that are not letters and digits only.
      t.match(env[key], /^[A-Za-z0-9]+$/, `${name}: ${key}`)
    }
    t.ok(env.AWS_REGION, `${name}: AWS_REGION`)
  }
})

t.test('export files live on one named volume shared by api and workers', async (t) => {
  const dirs: string[] = []
  for (const [name, role] of APP_SERVICES) {
    const config = loadConfig(environmentOf(services[name]), role)
    t.equal(config.EXPORT_STORAGE, 'local', `${name}: local export storage`)
    const volume = namedMounts(services[name]).get(config.EXPORT_DIR)
    if (t.ok(volume, `${name}: a named volume is mounted at EXPORT_DIR ${config.EXPORT_DIR}`)) {
      t.ok(compose.volumes && volume! in compose.volumes, `${volume} is declared under volumes:`)
      dirs.push(`${volume}:${config.EXPORT_DIR}`)
    }
  }
  t.equal(new Set(dirs).size, 1, 'the same volume at the same path')
})

t.test('healthchecks and start order', async (t) => {
  for (const name of ['redis', 'api']) t.ok(hasHealthcheck(services[name]), `${name} has a healthcheck`)
  t.match(JSON.stringify(services.redis?.healthcheck?.test), /redis-cli.*ping/)
  t.match(JSON.stringify(services.api?.healthcheck?.test), /127\.0\.0\.1:3000\/health/)
  t.equal(services.worker?.healthcheck?.disable, true, "the image's API healthcheck is off for workers")

  for (const [name, service] of Object.entries(services)) {
    for (const [dep, condition] of Object.entries(dependsOn(service))) {
      t.ok(services[dep], `${name} depends on ${dep}, which exists`)
      if (condition === 'service_healthy') t.ok(hasHealthcheck(services[dep]), `${dep} has a healthcheck to wait for`)
    }
  }
  for (const [name] of APP_SERVICES) {
    const deps = dependsOn(services[name])
    t.equal(deps.redis, 'service_healthy', `${name} waits for redis`)
    t.equal(deps.dynamodb, 'service_healthy', `${name} waits for dynamodb`)
  }
  t.equal(dependsOn(services.worker).mail, 'service_healthy', 'workers send mail: they wait for it')
})

t.test('the api publishes its port; shutdown gets the time the config allows', async (t) => {
  const apiConfig = loadConfig(environmentOf(services.api), 'api')
  t.ok(containerPorts(services.api).includes(apiConfig.PORT), `api publishes container port ${apiConfig.PORT}`)
  for (const [name, role] of APP_SERVICES) {
    const config = loadConfig(environmentOf(services[name]), role)
    t.ok(
      durationMs(services[name]?.stop_grace_period) > config.SHUTDOWN_TIMEOUT_MS,
      `${name}: stop_grace_period outlasts SHUTDOWN_TIMEOUT_MS (${config.SHUTDOWN_TIMEOUT_MS} ms)`,
    )
  }
})

t.test('docker compose accepts the file (only where a Docker engine runs)', async (t) => {
  // `which docker` is not enough: the CLI can be installed with no daemon behind it.
  const info = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 })
  if (info.status !== 0) {
    t.comment('no working Docker engine here (`docker info` failed): `docker compose config -q` not run')
    t.pass('static checks above cover the file')
    return
  }
  const result = spawnSync('docker', ['compose', 'config', '-q'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(result.status, 0, `docker compose config -q: ${result.stderr}`)
})

t.test('every published port listens on 127.0.0.1 only', async (t) => {
  let published = 0
  for (const [name, service] of Object.entries(services)) {
    for (const port of service.ports ?? []) {
      published++
      const spec = typeof port === 'string' ? port : String((port as { host_ip?: string }).host_ip ?? '')
      t.match(spec, /^127\.0\.0\.1:/, `${name}: ${JSON.stringify(port)} is bound to loopback`)
    }
  }
  t.ok(published >= 3, 'api, dynamodb and mail publish ports')
})

t.test('the dev secrets start the local stack, never a production one', async (t) => {
  t.equal(environmentOf(services.api).NODE_ENV, 'local', 'the stack runs as NODE_ENV=local by default')
  const prod = loadCompose({ NODE_ENV: 'production' })
  t.throws(() => loadConfig(environmentOf(prod.services.api), 'api'), {
    name: 'ConfigError',
    message: /^API_KEYS holds a well-known development key/,
  })
  t.throws(() => loadConfig(environmentOf(prod.services.worker), 'worker'), {
    name: 'ConfigError',
    message: /^CURSOR_SECRET is a well-known development value/,
  })
  const own = loadCompose({
    NODE_ENV: 'production',
    API_KEYS: 'prod-admin-key-0123456789:read,write,export,admin',
    CURSOR_SECRET: 'a-real-secret-of-32-characters!!',
  })
  t.ok(loadConfig(environmentOf(own.services.api), 'api'), 'own secrets start in production')
})
