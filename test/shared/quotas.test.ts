import { Redis } from 'ioredis'
import t from 'tap'
import { newBatchId } from '../../src/shared/batches/batch-id.ts'
import { createQuotas, createSlotPool, JOB_LEASE_MS, PENDING_LEASE_MS } from '../../src/shared/quotas/index.ts'
import { createRedisKeys } from '../../src/shared/redis/keys.ts'
import { uniquePrefix } from '../helpers/app.ts'
import { ownRedis } from '../helpers/services.ts'
import { waitFor } from '../helpers/wait.ts'

const server = process.env.REDIS_URL ? { url: process.env.REDIS_URL, close: async () => {} } : await ownRedis()
t.teardown(() => server.close())
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

/** A clock the test moves by hand: leases end when the test says, not when the machine gets there. */
function clock(start = 1_700_000_000_000) {
  let at = start
  return { now: () => at, advance: (ms: number) => (at += ms) }
}

const LIMITS = { TENANT_EXPORTS_MAX: 2, TENANT_BATCHES_MAX: 2, TENANT_BATCHES_MB: 1, KEY_STREAMS_MAX: 3 }
const acme = { id: 'key-acme-1', tenant: 'acme' }
const globex = { id: 'key-globex-1', tenant: 'globex' }
const MB = 1024 * 1024

t.test('slot pool: a count limit per owner, owners apart, release frees a slot', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const pool = createSlotPool({ redis, keys, kind: 'k' })
  const opts = { leaseMs: 60_000, max: 2 }
  t.equal(await pool.acquire('a', 'm1', opts), undefined)
  t.equal(await pool.acquire('a', 'm2', opts), undefined)
  t.match(await pool.acquire('a', 'm3', opts), { limit: 'count', count: 2 })
  t.equal(await pool.acquire('a', 'm1', opts), undefined, 'a member already held only renews its lease')
  t.equal(await pool.acquire('b', 'm1', opts), undefined, 'another owner has slots of its own')
  await pool.release('a', 'm1')
  t.equal(await pool.acquire('a', 'm3', opts), undefined)
  t.same((await pool.members('a')).map((m) => m.member).sort(), ['m2', 'm3'])
})

t.test('slot pool: a weight limit; an expired lease frees its slot and its weight (a crashed holder)', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const time = clock()
  const pool = createSlotPool({ redis, keys, kind: 'k', now: time.now })
  t.equal(await pool.acquire('a', 'big', { leaseMs: 1000, max: 10, weight: 700, maxWeight: 1000 }), undefined)
  t.match(await pool.acquire('a', 'more', { leaseMs: 1000, max: 10, weight: 400, maxWeight: 1000 }), { limit: 'weight', total: 700 })
  time.advance(500)
  t.ok(await pool.renew('a', 'big', 1000), 'renewed while its holder lives')
  time.advance(900)
  t.match(await pool.acquire('a', 'more', { leaseMs: 1000, max: 10, weight: 400, maxWeight: 1000 }), { limit: 'weight' }, 'the renewed lease still holds')
  time.advance(200)
  t.equal(await pool.acquire('a', 'more', { leaseMs: 1000, max: 10, weight: 400, maxWeight: 1000 }), undefined, 'the lease ended: slot and bytes are free')
  t.same(
    (await pool.members('a')).map((m) => m.member),
    ['more'],
  )
  t.notOk(await pool.renew('a', 'big', 1000), 'an expired member cannot be renewed back')
  t.ok((await redis.pttl(keys.quota('k', 'a', 'members'))) > 0, 'the keys expire with their last lease')
})

t.test('slot pool: renaming keeps the weight and takes the new lease', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const pool = createSlotPool({ redis, keys, kind: 'k' })
  await pool.acquire('a', 'pending:1', { leaseMs: 1000, max: 5, weight: 10, maxWeight: 15 })
  t.ok(await pool.renew('a', 'pending:1', 60_000, 'real-1'))
  t.same(
    (await pool.members('a')).map((m) => m.member),
    ['real-1'],
  )
  t.match(await pool.acquire('a', 'x', { leaseMs: 1000, max: 5, weight: 10, maxWeight: 15 }), { limit: 'weight', total: 10 })
})

t.test('exports: TENANT_EXPORTS_MAX per tenant, freed when an export ends, whoever ended it', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const quotas = createQuotas({ redis, keys, config: LIMITS })
  t.teardown(() => quotas.close())
  const store = (id: string, status = 'queued') => redis.hset(keys.exportRecord(id), 'status', status)
  let created = 0
  const create = (id: string) => () => store(id).then(() => created++)

  await quotas.admitExport(acme, 'x1', create('x1'))
  await quotas.admitExport(acme, 'x2', create('x2'))
  await t.rejects(quotas.admitExport(acme, 'x3', create('x3')), { code: 'DC_ERR_EXPORT_QUOTA', statusCode: 429 })
  t.equal(created, 2, 'a refused export is never created')
  await quotas.admitExport(globex, 'g1', create('g1'))
  await quotas.admitExport(globex, 'g2', create('g2'))
  t.equal(created, 4, "another tenant's exports are counted apart")

  await store('x1', 'processing')
  await t.rejects(quotas.admitExport(acme, 'x3', create('x3')), { code: 'DC_ERR_EXPORT_QUOTA' }, 'processing still counts')
  await store('x1', 'cancelled')
  await quotas.admitExport(acme, 'x3', create('x3'))
  await store('x2', 'failed')
  await redis.del(keys.exportRecord('x3'))
  await quotas.admitExport(acme, 'x4', create('x4'))
  await quotas.admitExport(acme, 'x5', create('x5'))
  t.equal(created, 7, 'failed, cancelled and removed exports free their slots')
  await t.rejects(quotas.admitExport(globex, 'g3', create('g3')), { code: 'DC_ERR_EXPORT_QUOTA' }, "acme's freed slots are not globex's")
})

t.test('exports: a failed create frees its slot at once; a pending slot of a crashed process ends with its lease', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const time = clock()
  const quotas = createQuotas({ redis, keys, config: { ...LIMITS, TENANT_EXPORTS_MAX: 1 }, now: time.now })
  t.teardown(() => quotas.close())
  await t.rejects(
    quotas.admitExport(acme, 'x1', () => Promise.reject(new Error('store down'))),
    /store down/,
  )
  await quotas.admitExport(acme, 'x2', () => redis.hset(keys.exportRecord('x2'), 'status', 'queued'))
  const members = await createSlotPool({ redis, keys, kind: 'export' }).members('acme')
  t.same(
    members.map((m) => m.member),
    ['x2'],
  )
  t.equal(members[0]!.expiresAt, time.now() + JOB_LEASE_MS, 'a created export holds its slot for the job lease')

  // A process that died between taking the slot and storing the export leaves a pending member.
  const other = createRedisKeys(uniquePrefix())
  const crashed = createSlotPool({ redis, keys: other, kind: 'export', now: time.now })
  await crashed.acquire('acme', 'pending:lost', { leaseMs: PENDING_LEASE_MS, max: 1 })
  const survivor = createQuotas({ redis, keys: other, config: { ...LIMITS, TENANT_EXPORTS_MAX: 1 }, now: time.now })
  await t.rejects(
    survivor.admitExport(acme, 'y', async () => {}),
    { code: 'DC_ERR_EXPORT_QUOTA' },
    'a pending slot counts while it may still be created',
  )
  time.advance(PENDING_LEASE_MS + 1)
  await survivor.admitExport(acme, 'y', () => redis.hset(other.exportRecord('y'), 'status', 'queued'))
})

t.test('batches: count and bytes per tenant; an idempotent replay takes no slot; finished batches free theirs', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const quotas = createQuotas({ redis, keys, config: LIMITS })
  t.teardown(() => quotas.close())
  const stored: string[] = []
  const create =
    (status = 'queued') =>
    async () => {
      const id = newBatchId('orders')
      await redis.hset(keys.batch('orders', id), 'status', status)
      stored.push(id)
      return { id, created: true }
    }
  await quotas.admitBatch(acme, 0.6 * MB, create())
  await t.rejects(quotas.admitBatch(acme, 0.6 * MB, create()), { code: 'DC_ERR_BATCH_QUOTA', statusCode: 429, message: /1 MB/ })
  await quotas.admitBatch(acme, 0.3 * MB, create())
  await t.rejects(quotas.admitBatch(acme, 1, create()), { code: 'DC_ERR_BATCH_QUOTA', message: /2 unfinished batches/ })
  t.equal(stored.length, 2, 'refused batches are never created')

  const replay = await quotas.admitBatch(globex, 0.9 * MB, async () => ({ id: stored[0]!, created: false }))
  t.equal(replay.created, false)
  await quotas.admitBatch(globex, 0.9 * MB, create())
  t.same((await createSlotPool({ redis, keys, kind: 'batch' }).members('globex')).length, 1, 'the replay left no slot behind')

  await redis.hset(keys.batch('orders', stored[0]!), 'status', 'retrying')
  await t.rejects(quotas.admitBatch(acme, 1, create()), { code: 'DC_ERR_BATCH_QUOTA' }, 'a retrying batch is unfinished')
  await redis.hset(keys.batch('orders', stored[0]!), 'status', 'completed')
  await quotas.admitBatch(acme, 0.6 * MB, create())
  t.equal(stored.length, 4, 'a completed batch freed its slot and its bytes')
})

t.test('streams: KEY_STREAMS_MAX per key, released on close, a dead process frees its slots after the lease', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const time = clock()
  const quotas = createQuotas({ redis, keys, config: LIMITS, now: time.now, streamLeaseMs: 60_000 })
  t.teardown(() => quotas.close())
  const mine = await Promise.all([1, 2, 3].map(() => quotas.openStream(acme)))
  await t.rejects(quotas.openStream(acme), { code: 'DC_ERR_STREAM_QUOTA', statusCode: 429 })
  const sameTenantOtherKey = await quotas.openStream({ id: 'key-acme-2', tenant: 'acme' })
  t.ok(sameTenantOtherKey, 'the limit is per key, not per tenant')
  mine[0]!.release()
  mine[0]!.release()
  const pool = createSlotPool({ redis, keys, kind: 'stream' })
  await waitFor('the released slot', async () => (await pool.members(acme.id)).length === 2)
  const again = await quotas.openStream(acme)
  t.ok(again, 'a closed stream frees its slot')

  // Another process dies with three open streams: they count until their lease ends, then free themselves.
  const crashed = createQuotas({ redis, keys, config: LIMITS, now: time.now, streamLeaseMs: 60_000 })
  const other = { id: 'key-globex-9', tenant: 'globex' }
  await Promise.all([1, 2, 3].map(() => crashed.openStream(other)))
  await t.rejects(quotas.openStream(other), { code: 'DC_ERR_STREAM_QUOTA' })
  time.advance(60_001)
  t.ok(await quotas.openStream(other), 'the dead process leaked nothing past its lease')
  await crashed.close()
})
