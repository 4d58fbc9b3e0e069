import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { freePort, stopChild, waitForOutput } from './ports.ts'

/** A redis-server this process owns: it can be stopped, killed and restarted on the same port. */
export interface LocalRedis {
  readonly url: string
  readonly port: number
  /** SIGTERM and wait. */
  stop(): Promise<void>
  /** SIGKILL and wait: an abrupt outage. */
  kill(): Promise<void>
  /** Starts it again on the same port (empty: it keeps nothing on disk). */
  start(): Promise<void>
  readonly running: boolean
}

export function redisServerOnPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path ? path : undefined
}

/**
 * Starts `redis-server` from PATH on a free port. Keeps nothing on disk, unless `appendOnlyDir` is given:
 * then every write is fsynced to an append-only file there, so a killed and restarted server keeps its data.
 */
export async function startRedisServer(binary = 'redis-server', port?: number, appendOnlyDir?: string): Promise<LocalRedis> {
  const chosen = port ?? (await freePort())
  let child: ChildProcess | undefined
  const persistence = appendOnlyDir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', appendOnlyDir, '--save', '']
    : ['--save', '', '--appendonly', 'no']
  const start = async () => {
    const proc = spawn(binary, ['--port', String(chosen), '--bind', '127.0.0.1', ...persistence, '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = proc
    await waitForOutput(proc, /Ready to accept connections|ready to accept/i, `redis-server on ${chosen}`)
  }
  await start()
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null
    },
    start,
    stop: () => (child ? stopChild(child, 'SIGTERM') : Promise.resolve()),
    kill: () => (child ? stopChild(child, 'SIGKILL') : Promise.resolve()),
  }
}

/**
 * The local stack's Redis: `redis-server` from PATH, else the redis-memory-server package (which
 * needs a binary it can build or download), else a clear error saying what to do.
 */
export async function startEmbeddedRedis(): Promise<LocalRedis> {
  const binary = redisServerOnPath()
  if (binary) return startRedisServer(binary)
  try {
    const { RedisMemoryServer } = await import('redis-memory-server')
    const server = await RedisMemoryServer.create()
    const port = await server.getPort()
    const host = await server.getHost()
    let running = true
    return {
      url: `redis://${host}:${port}`,
      port,
      get running() {
        return running
      },
      start: async () => {
        await server.start()
        running = true
      },
      stop: async () => {
        await server.stop()
        running = false
      },
      kill: async () => {
        await server.stop()
        running = false
      },
    }
  } catch (err) {
    throw new Error(
      'No Redis available: install redis-server (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) ' +
        `or set REDIS_URL to a running Redis. (redis-memory-server: ${(err as Error).message})`,
    )
  }
}
