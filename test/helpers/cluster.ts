import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, stopChild, waitForOutput } from '../../src/local/services/ports.ts'

export interface LocalCluster {
  /** Seed nodes, as REDIS_URL takes them with REDIS_CLUSTER=true. */
  readonly url: string
  readonly ports: number[]
  /** Keys matching `match` on each master, by port, read with SCAN from each node directly. */
  keysByNode(match?: string): Promise<Map<number, string[]>>
  /** The port of the master that owns the slot of `key`. */
  ownerOf(key: string): Promise<number>
  stop(): Promise<void>
}

/** Runs `fn` on a plain connection to one node, closed afterwards. */
async function onNode<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true })
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

/**
 * One cluster node on free ports. Its bus port is chosen too (by default it is the port + 10000, which
 * another process may hold); a port taken between the check and the bind gets another try.
 */
async function startNode(dir: string): Promise<{ node: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port, busPort] = [await freePort(), await freePort()]
    const node = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--cluster-port',
        String(busPort),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      await waitForOutput(node, /Ready to accept connections/i, `cluster node ${port}`)
      return { node, port }
    } catch (err) {
      node.kill('SIGKILL')
      if (attempt >= 3) throw err
    }
  }
}

/** A three-master Redis Cluster on loopback (no replicas), started from the redis-server on PATH. */
export async function startRedisCluster(): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'dc-cluster-'))
  const nodes: ChildProcess[] = []
  const ports: number[] = []
  for (let i = 0; i < 3; i++) {
    const { node, port } = await startNode(dir)
    nodes.push(node)
    ports.push(port)
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
    encoding: 'utf8',
  })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
  // Wait until every node agrees the cluster is ok.
  for (let i = 0; i < 100; i++) {
    const states = ports.map((p) => spawnSync('redis-cli', ['-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }).stdout)
    if (states.every((s) => s.includes('cluster_state:ok'))) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','),
    ports,
    async keysByNode(match = '*') {
      const byNode = new Map<number, string[]>()
      for (const port of ports) {
        const found = await onNode(port, async (redis) => {
          const keys: string[] = []
          let cursor = '0'
          do {
            const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)
            cursor = next
            keys.push(...batch)
          } while (cursor !== '0')
          return keys
        })
        byNode.set(port, found)
      }
      return byNode
    },
    async ownerOf(key) {
      return onNode(ports[0]!, async (redis) => {
        const slot = (await redis.call('CLUSTER', 'KEYSLOT', key)) as number
        const ranges = (await redis.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>
        const range = ranges.find(([from, to]) => slot >= from && slot <= to)
        if (!range) throw new Error(`no node owns slot ${slot}`)
        return Number(range[2][1])
      })
    },
    async stop() {
      await Promise.all(nodes.map((n) => stopChild(n, 'SIGTERM')))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
