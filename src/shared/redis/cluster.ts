import { Cluster, type ClusterOptions, type Redis } from 'ioredis'
import { SCRIPTS_WITH_KEY_COUNT } from './scripts.ts'

export interface ClusterSeeds {
  nodes: Array<{ host: string; port: number }>
  /** Credentials and TLS of the first seed: nodes found through CLUSTER SLOTS get only a host and port. */
  redisOptions: NonNullable<ClusterOptions['redisOptions']>
}

/** REDIS_URL with REDIS_CLUSTER: comma-separated redis:// or rediss:// seed URLs (db numbers do not apply). */
export function clusterSeeds(url: string): ClusterSeeds {
  const urls = url.split(',').map((u) => new URL(u.trim()))
  const first = urls[0]!
  const redisOptions: ClusterSeeds['redisOptions'] = {}
  if (first.username) redisOptions.username = decodeURIComponent(first.username)
  if (first.password) redisOptions.password = decodeURIComponent(first.password)
  if (first.protocol === 'rediss:') redisOptions.tls = {}
  return {
    nodes: urls.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) })),
    redisOptions,
  }
}

export interface ClusterRoleOptions {
  /** false fails commands at once while the cluster is not ready (the `fast` role). */
  enableOfflineQueue: boolean
  /** Options of each node connection: timeouts, retries per request, connection name. */
  redisOptions: NonNullable<ClusterOptions['redisOptions']>
  retryStrategy(times: number): number
}

/**
 * An ioredis Cluster, typed as the Redis the rest of the code uses: both share the command API, and
 * code that must differ on a cluster (SCAN, pipelines across tables) asks `isCluster()`.
 */
export function openCluster(url: string, role: ClusterRoleOptions): Redis {
  const seeds = clusterSeeds(url)
  // Auto-pipelining is the Cluster's own option (it batches per slot); on a node connection it does nothing.
  // No role turns it on today (index.ts says why); the guard below stays so that turning it on is safe.
  const { enableAutoPipelining = false, ...node } = role.redisOptions
  const cluster = new Cluster(seeds.nodes, {
    enableOfflineQueue: role.enableOfflineQueue,
    enableAutoPipelining,
    // The Cluster groups auto-pipelined commands by the slot of their first argument. A script whose
    // caller passes the number of keys first would be grouped by the slot of that number, beside commands
    // of another node, and the whole batch fails ("All keys in the pipeline should belong to the same
    // slots allocation group"): those scripts are sent on their own.
    autoPipeliningIgnoredCommands: SCRIPTS_WITH_KEY_COUNT,
    // 'ready' only once CLUSTER INFO says ok, so a half-formed cluster does not take traffic.
    enableReadyCheck: true,
    slotsRefreshTimeout: 2000,
    clusterRetryStrategy: role.retryStrategy,
    redisOptions: { ...seeds.redisOptions, ...node },
  })
  return cluster as unknown as Redis
}
