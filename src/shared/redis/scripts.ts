import { readFileSync } from 'node:fs'
import type { Redis, Result } from 'ioredis'

/**
 * Every Lua script of the service, by command name. Each lives in scripts/<name>.lua with a header
 * stating its KEYS, ARGV and reply (BullMQ's convention); `npm run build` copies them beside dist/.
 */
export const SCRIPTS = {
  // cache/store.ts
  // null: the caller passes the number of keys first
  dcCacheRead: { numberOfKeys: null },
  dcCacheBump: { numberOfKeys: null },
  dcUnlock: { numberOfKeys: 1 },
  // exports/store.ts
  dcExportClaim: { numberOfKeys: 3 },
  dcExportClaimMail: { numberOfKeys: 1 },
  dcExportCommit: { numberOfKeys: 3 },
  dcExportRaise: { numberOfKeys: 2 },
  dcExportFinish: { numberOfKeys: 2 },
  // quotas/slots.ts
  dcQuotaAcquire: { numberOfKeys: 2 },
  dcQuotaRenew: { numberOfKeys: 2 },
  dcQuotaRelease: { numberOfKeys: 2 },
  // dynamo/capacity-budget.ts
  dcBudgetAdmit: { numberOfKeys: 1 },
  // api/key-budget.ts
  dcRateLease: { numberOfKeys: 1 },
  // batches/store.ts
  dcBatchCreate: { numberOfKeys: 3 },
  dcBatchRecord: { numberOfKeys: 4 },
  dcBatchSettle: { numberOfKeys: 5 },
  dcBatchDiscardIdempotency: { numberOfKeys: 1 },
  // workers/streams/lease.ts
  dcStreamLease: { numberOfKeys: 2 },
  dcStreamRelease: { numberOfKeys: 2 },
  dcStreamCommit: { numberOfKeys: 5 },
} as const satisfies Record<string, { numberOfKeys: number | null }>

export type ScriptName = keyof typeof SCRIPTS

/** Scripts whose caller passes the number of keys first (their first argument is no key). */
export const SCRIPTS_WITH_KEY_COUNT: string[] = Object.entries(SCRIPTS)
  .filter(([, script]) => script.numberOfKeys === null)
  .map(([name]) => name)

declare module 'ioredis' {
  interface RedisCommander<Context> {
    dcCacheReadBuffer(numberOfKeys: number, ...keysThenArgs: string[]): Result<Array<Buffer | null>, Context>
    dcCacheBump(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<string[], Context>
    dcUnlock(lockKey: string, token: string): Result<number, Context>

    dcExportClaimMail(record: string, field: string, claim: string): Result<number | string, Context>
    dcExportClaim(
      record: string,
      segs: string,
      events: string,
      segment: number,
      owner: string,
      now: number,
      maxLen: number,
    ): Result<[string, string | null], Context>
    dcExportCommit(
      record: string,
      segs: string,
      events: string,
      segment: number,
      owner: string,
      checkpoint: string,
      rows: number,
      scanned: number,
      fraction: number,
      segments: number,
      maxLen: number,
    ): Result<string, Context>
    dcExportRaise(record: string, events: string, progress: number, maxLen: number): Result<string, Context>
    dcExportFinish(
      record: string,
      events: string,
      status: string,
      now: number,
      error: string,
      file: string,
      bytes: number,
      maxLen: number,
    ): Result<[string, number], Context>

    dcQuotaAcquire(
      members: string,
      weights: string,
      now: number,
      member: string,
      expiry: number,
      max: number,
      weight: number,
      maxWeight: number,
    ): Result<[number, string | number, number, number?], Context>
    dcQuotaRenew(members: string, weights: string, member: string, expiry: number, rename: string, now: number): Result<number, Context>
    dcQuotaRelease(members: string, weights: string, ...release: string[]): Result<number, Context>

    dcBudgetAdmit(key: string, limit: number, reserve: number): Result<number, Context>
    dcRateLease(counter: string, windowMs: number, tokens: number): Result<[number, number], Context>

    dcBatchCreate(
      hash: string,
      ops: string,
      idem: string,
      fingerprint: string,
      id: string,
      ttlMs: number,
      blob: Buffer,
      ...fields: string[]
    ): Result<[string, string], Context>
    dcBatchRecord(hash: string, ops: string, done: string, errs: string, ...args: Array<string | number>): Result<[number, number, number] | null, Context>
    dcBatchSettle(
      hash: string,
      ops: string,
      done: string,
      errs: string,
      idem: string,
      status: string,
      now: string,
      error: string,
      ttlMs: number,
    ): Result<string | null, Context>
    dcBatchDiscardIdempotency(idem: string, id: string): Result<number, Context>

    dcStreamLease(lease: string, live: string, token: string, leaseMs: number, shardId: string, atTip: string): Result<number, Context>
    dcStreamRelease(lease: string, live: string, token: string, shardId: string): Result<number, Context>
    dcStreamCommit(
      lease: string,
      shards: string,
      audit: string,
      stats: string,
      live: string,
      token: string,
      leaseMs: number,
      shardId: string,
      state: string,
      auditMax: number,
      appliedCount: number,
      lastCreatedMs: string,
      ...applied: string[]
    ): Result<number, Context>
  }
}

/** Where the .lua files are: src/shared/redis/scripts/ under tsx, dist/shared/redis/scripts/ once built. */
export const SCRIPTS_DIR = new URL('./scripts/', import.meta.url)

/** The leading `--[[ ... ]]` header, which documents the script and is not sent to Redis. */
const HEADER = /^--\[\[[\s\S]*?\]\]/

/**
 * The script's text as Redis runs it: the file without its header, so that a shebang declaring the
 * script's flags (`#!lua flags=allow-oom`, right after the header) is its first line, as Redis requires.
 */
export function readScript(name: ScriptName): string {
  return readFileSync(new URL(`${name}.lua`, SCRIPTS_DIR), 'utf8')
    .replace(HEADER, '')
    .trimStart()
}

// Read once at import, so a missing file fails the process at boot, not on its first command.
const LUA = Object.fromEntries(Object.keys(SCRIPTS).map((name) => [name, readScript(name as ScriptName)])) as Record<ScriptName, string>

const defined = new WeakSet<object>()

/** Defines every script as a command on a connection (a Redis or a Cluster); later calls do nothing. */
export function defineScripts(redis: Redis): void {
  if (defined.has(redis)) return
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const numberOfKeys = SCRIPTS[name].numberOfKeys
    redis.defineCommand(name, { ...(numberOfKeys === null ? {} : { numberOfKeys }), lua: LUA[name] })
  }
  defined.add(redis)
}
