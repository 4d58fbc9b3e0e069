import type { Job } from 'bullmq'
import { ENTRY_FIELDS, type EntryMeta } from '../shared/cache/entry-layout.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { pipelineByTag, scanKeys } from '../shared/redis/index.ts'
import type { WorkerDeps } from './deps.ts'

export interface PurgeResult {
  scanned: number
  removed: number
}

const ENTRY_KEY = /^.*:\{(.+)\}:e:[^:]+$/

/**
 * Removes entries whose generation is no longer their table's current one. Runs in the background
 * after an invalidation, so the request path never scans keys. SCAN (never KEYS) + UNLINK in batches.
 */
export default function createCacheMaintenanceProcessor({ redis, keys }: WorkerDeps) {
  return async function cacheMaintenance(job: Job<QueuePayload<'cache-maintenance'>>): Promise<PurgeResult> {
    const { table } = job.data
    const match = table === null ? `${keys.prefix}:*:e:*` : `${keys.tablePattern(table).slice(0, -1)}e:*`
    const currentGeneration = new Map<string, string>()
    const generationOf = async (t: string) => {
      let gen = currentGeneration.get(t)
      if (gen === undefined) {
        gen = (await redis.get(keys.generation(t === '*' ? null : t))) ?? '0'
        currentGeneration.set(t, gen)
      }
      return gen
    }

    let scanned = 0
    let removed = 0
    // Every master on a cluster; each pipeline below is split by hash tag (keys of several tables mix here).
    for await (const found of scanKeys(redis, match)) {
      scanned += found.length
      const fields = await pipelineByTag(
        redis,
        found.map((key) => ({ key, add: (p) => p.hmget(key, ENTRY_FIELDS.generation, ENTRY_FIELDS.meta) })),
      )
      const dead: string[] = []
      for (const [i, key] of found.entries()) {
        const entryTable = ENTRY_KEY.exec(key)?.[1]
        const [gen, metaJson] = (fields[i]?.[1] ?? []) as [string | null, string | null]
        if (entryTable === undefined || gen === null) continue
        if (gen === (await generationOf(entryTable))) continue
        dead.push(key)
        const meta = metaJson ? (JSON.parse(metaJson) as EntryMeta) : undefined
        const id = key.slice(key.lastIndexOf(':') + 1)
        for (let c = 0; c < (meta?.chunks ?? 0); c++) {
          dead.push(keys.chunk(entryTable === '*' ? null : entryTable, id, meta!.version, c))
        }
      }
      if (dead.length > 0) {
        await pipelineByTag(
          redis,
          dead.map((key) => ({ key, add: (p) => p.unlink(key) })),
        )
        removed += dead.length
      }
      await job.updateProgress({ scanned, removed })
    }
    return { scanned, removed }
  }
}
