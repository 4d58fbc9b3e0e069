/**
 * Every Redis key dynacache writes, in one place. A table's keys share the hash tag `{<table>}` so
 * multi-key commands and scripts on one table are Redis Cluster safe; keys that belong to no table
 * share the tag `{*}` (`*` cannot appear in a DynamoDB table name). Queues live under their own tag.
 */
export interface RedisKeys {
  /** The key prefix every key starts with (REDIS_PREFIX). */
  readonly prefix: string
  /** BullMQ's prefix: one hash tag for every queue key. */
  readonly queuePrefix: string
  /** Pattern matching every key of a table, for SCAN-based clean-up. */
  tablePattern(table: string | null): string
  /** A table's cache generation; bumping it invalidates every entry of the table at once. */
  generation(table: string | null): string
  /**
   * One of a table's dependency generations (docs/coherence.md): `data` (scan pages), `def` (details),
   * `i:<key>` an item, `p:<value>` a partition, `x:<index>` or `x:<index>:<value>` a GSI or one of its partitions.
   */
  dependency(table: string | null, dep: string): string
  /** A cache entry: hash of metadata and (small) body. */
  entry(table: string | null, id: string): string
  /** One chunk of a large entry body, under the version that wrote it. */
  chunk(table: string | null, id: string, version: string, index: number): string
  /** Single-flight lock for filling one entry. */
  lock(table: string | null, id: string): string
  /** Set of tables that have had anything cached (for DELETE /cache). */
  readonly cachedTables: string
  /** Read units a table consumed in one second (the shared read budget). */
  budget(table: string, epochSecond: number): string
  /** Write units a table consumed in one second (the shared write budget of batch writes). */
  writeBudget(table: string, epochSecond: number): string
  /** Sorted set of a table's most requested cached reads (members are resource JSON), for prefetch. */
  hotReads(table: string): string
  /**
   * The Streams follower's keys of a table (src/workers/streams): `shards` (hash, shard id -> checkpoint
   * or done; `@arn` the stream followed), `lease:<shard>` (the holder's token) and `audit:<shard>` (list
   * of applied sequence numbers, with STREAMS_AUDIT), `stats` (hash of fleet-wide counters: `applied`,
   * `lost`) and `live` (hash per shard, Redis time in ms: `e:<shard>` lease expiry, `c:<shard>` the last
   * applied record's creation time, `t:<shard>` when a read since then found the shard's tip), which the
   * API's /metrics reads at scrape time.
   */
  streamFollow(table: string, part: 'shards' | 'stats' | 'live' | `lease:${string}` | `audit:${string}`): string
  /** Set of the tables the Streams follower follows, as its last discovery found them. */
  readonly streamsFollowed: string
  /** A batch write's hash (status, counters) or one of its parts: operations, confirmed bitmap, per-operation errors. */
  batch(table: string, id: string, part?: 'ops' | 'done' | 'errors'): string
  /** An Idempotency-Key's record (request fingerprint and batch id); `digest` hashes the caller's key. */
  idempotency(table: string, digest: string): string
  /**
   * An export's keys, all under the tag `{*exports}` so one script can update a record, its segment
   * checkpoints, its event stream and the history together: the record hash, `seg` (checkpoints and
   * owners per segment) or `events` (the progress stream SSE replays).
   */
  exportRecord(id: string, part?: 'seg' | 'events'): string
  /** Sorted set of every export, members `<createdAt ms, 15 digits>:<id>`, for history newest first. */
  readonly exportHistory: string
  /** Hash of how many exports ended in each terminal status (completed, failed, cancelled), fleet-wide, for metrics. */
  readonly exportOutcomes: string
  /** Hash of export schedules, field = schedule id, value = its JSON; `run` = a tick's run marker. */
  exportSchedules(part?: { run: string }): string
  /** Hash of statistics counters, fields `<table>|<counter>`. */
  readonly stats: string
  /** Sorted set of table popularity for one hour bucket. */
  popularity(hourBucket: number): string
  /** Hash of one minute's statistics counters (fields `<table>|<counter>`), for GET /cache/stats/history. */
  statsMinute(epochMinute: number): string
  /**
   * A quota's slots for one owner (tenant or key id): `members` (sorted set, score = lease expiry ms)
   * and `weights` (hash, member -> bytes); both share one hash tag per kind and owner.
   */
  quota(kind: string, owner: string, part: 'members' | 'weights'): string
}

export function createRedisKeys(prefix: string): RedisKeys {
  const tag = (table: string | null) => `${prefix}:{${table ?? '*'}}`
  return {
    prefix,
    queuePrefix: `{${prefix}}:q`,
    tablePattern: (table) => `${tag(table)}:*`,
    generation: (table) => `${tag(table)}:gen`,
    dependency: (table, dep) => `${tag(table)}:g:${dep}`,
    entry: (table, id) => `${tag(table)}:e:${id}`,
    chunk: (table, id, version, index) => `${tag(table)}:c:${id}:${version}:${index}`,
    lock: (table, id) => `${tag(table)}:l:${id}`,
    cachedTables: `${tag(null)}:tables`,
    budget: (table, epochSecond) => `${tag(table)}:budget:${epochSecond}`,
    writeBudget: (table, epochSecond) => `${tag(table)}:wbudget:${epochSecond}`,
    hotReads: (table) => `${tag(table)}:hot`,
    streamFollow: (table, part) => `${tag(table)}:sf:${part}`,
    streamsFollowed: `${tag(null)}:sf:tables`,
    batch: (table, id, part) => `${tag(table)}:b:${id}${part ? `:${part}` : ''}`,
    idempotency: (table, digest) => `${tag(table)}:idem:${digest}`,
    exportRecord: (id, part) => `${prefix}:{*exports}:x:${id}${part ? `:${part}` : ''}`,
    exportHistory: `${prefix}:{*exports}:history`,
    exportOutcomes: `${prefix}:{*exports}:outcomes`,
    exportSchedules: (part) => `${prefix}:{*exports}:schedules${part ? `:run:${part.run}` : ''}`,
    stats: `${tag(null)}:stats`,
    popularity: (hourBucket) => `${tag(null)}:pop:${hourBucket}`,
    statsMinute: (epochMinute) => `${tag(null)}:stats:m:${epochMinute}`,
    quota: (kind, owner, part) => `${prefix}:{*quota:${kind}:${owner}}:${part === 'members' ? 'm' : 'w'}`,
  }
}
