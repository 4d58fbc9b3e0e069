import { Redis } from 'ioredis'
import t from 'tap'
import { type Checkpoint, type ExportEvent, type ExportRecord, FRESH_CHECKPOINT } from '../../../src/shared/exports/model.ts'
import { createProgressFeed } from '../../../src/shared/exports/progress-feed.ts'
import { createExportStore } from '../../../src/shared/exports/store.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { uniquePrefix } from '../../helpers/app.ts'
import { ownRedis } from '../../helpers/services.ts'

const server = await ownRedis()
t.teardown(() => server.close())
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

function fresh() {
  const keys = createRedisKeys(uniquePrefix())
  return { keys, store: createExportStore({ redis, keys }) }
}

let clock = Date.UTC(2030, 0, 1)
const record = (id: string, over: Partial<ExportRecord> = {}): ExportRecord => ({
  id,
  table: 'orders',
  format: 'jsonl',
  gzip: false,
  status: 'queued',
  progress: 0,
  processedItems: 0,
  scannedItems: 0,
  expectedItems: 0,
  segments: 2,
  createdAt: clock++,
  ...over,
})
const page = (cp: Checkpoint, rows: number, done = false): Checkpoint => ({
  ...cp,
  key: done ? null : `{"PK":{"S":"k${cp.pages}"}}`,
  pages: cp.pages + 1,
  bytes: cp.bytes + rows * 10,
  rows: cp.rows + rows,
  scanned: cp.scanned + rows,
  done,
})

t.test('records: created queued with a first event, listed newest first with a cursor and a status filter', async (t) => {
  const { store } = fresh()
  for (const id of ['a', 'b', 'c', 'd', 'e']) await store.create(record(id, id === 'c' ? { notify: 'x@y.z', filter: '[]', gzip: true } : {}))
  const c = (await store.get('c'))!
  t.match(c, { id: 'c', status: 'queued', progress: 0, gzip: true, notify: 'x@y.z', filter: '[]', segments: 2 })
  t.equal(await store.get('zz'), undefined)
  t.same(
    (await store.events('c')).map((e) => [e.type, e.data]),
    [['progress', { status: 'queued', progress: 0, processedItems: 0 }]],
  )

  const first = await store.list({ limit: 2 })
  t.same(
    first.records.map((r) => r.id),
    ['e', 'd'],
  )
  const second = await store.list({ limit: 2, before: first.next! })
  t.same(
    second.records.map((r) => r.id),
    ['c', 'b'],
  )
  const third = await store.list({ limit: 2, before: second.next! })
  t.same(
    third.records.map((r) => r.id),
    ['a'],
  )
  t.equal(third.next, undefined, 'no cursor after the last page')

  await store.finish('b', 'cancelled')
  await store.finish('d', 'cancelled')
  t.same(
    (await store.list({ limit: 10, status: 'cancelled' })).records.map((r) => r.id),
    ['d', 'b'],
  )
  t.same((await store.list({ limit: 10, status: 'completed' })).records, [])
})

t.test('segments: claiming starts the export; a stale run is fenced off; counters follow the checkpoints', async (t) => {
  const { store } = fresh()
  await store.create(record('x'))
  const claim = await store.claimSegment('x', 0, 'run-1')
  t.same(claim, { status: 'processing' }, 'no checkpoint yet')
  const x = (await store.get('x'))!
  t.equal(x.status, 'processing')
  t.ok(x.startedAt! > 0)
  const cp1 = page({ ...FRESH_CHECKPOINT }, 100)
  t.equal(await store.commitPage('x', 0, 'run-1', cp1, 0.5, 2), 'ok')

  // The run stalls; another takes the segment over and resumes from the checkpoint.
  const takeover = await store.claimSegment('x', 0, 'run-2')
  t.same(takeover.checkpoint, cp1, 'the new run gets the checkpoint')
  t.equal(await store.commitPage('x', 0, 'run-1', page(cp1, 100), 0.6, 2), 'fenced', 'the stale run can no longer commit')
  t.notOk(await store.ownsSegment('x', 0, 'run-1'), 'nor write: it no longer owns the segment')
  t.ok(await store.ownsSegment('x', 0, 'run-2'), 'the new run does')
  const cp2 = page(cp1, 50)
  t.equal(await store.commitPage('x', 0, 'run-2', cp2, 2 / 3, 2), 'ok')
  t.equal((await store.get('x'))!.processedItems, 150, 'rows counted once: the fenced page never counted')
  // A segment that starts over (its part was lost) moves the counters back with it.
  t.equal(await store.commitPage('x', 0, 'run-2', page({ ...FRESH_CHECKPOINT }, 30), 0.5, 2), 'ok')
  t.equal((await store.get('x'))!.processedItems, 30)
  t.same((await store.checkpoints('x', 2))[1], undefined)
})

t.test('progress: 0-95 while scanning, only rises, one event per rise; from ItemCount when known', async (t) => {
  const { store } = fresh()
  await store.create(record('p'))
  await store.claimSegment('p', 0, 'r0')
  await store.claimSegment('p', 1, 'r1')
  let s0 = page({ ...FRESH_CHECKPOINT }, 10)
  await store.commitPage('p', 0, 'r0', s0, 0.5, 2)
  t.equal((await store.get('p'))!.progress, 23, 'one segment half way: 95 x 0.25')
  s0 = page(s0, 10, true)
  await store.commitPage('p', 0, 'r0', s0, 1, 2)
  t.equal((await store.get('p'))!.progress, 47)
  // A lower estimate never lowers the progress, and adds no event.
  const before = (await store.events('p')).length
  await store.commitPage('p', 1, 'r1', page({ ...FRESH_CHECKPOINT }, 0), 0, 2)
  t.equal((await store.get('p'))!.progress, 47)
  t.equal((await store.events('p')).length, before)
  t.equal(await store.raiseProgress('p', 97), 'processing')
  t.equal((await store.get('p'))!.progress, 97)

  await store.create(record('q', { expectedItems: 1000 }))
  await store.claimSegment('q', 0, 'r0')
  await store.commitPage('q', 0, 'r0', page({ ...FRESH_CHECKPOINT }, 250), 0.5, 2)
  t.equal((await store.get('q'))!.progress, 23, 'scanned / ItemCount: 95 x 250 / 1000')
  const progress = (await store.events('q')).map((e) => e.data.progress)
  t.same(progress, [0, 0, 23], 'queued, processing, then the rise')
})

t.test('terminal states: reached once, completed only from processing, and they stop the segments', async (t) => {
  const { keys, store } = fresh()
  await store.create(record('f'))
  t.same(await store.finish('f', 'completed', { file: 'export.jsonl', bytes: 5 }), { before: 'queued', changed: false }, 'not from queued')
  await store.claimSegment('f', 0, 'r')
  t.same(await store.finish('f', 'completed', { file: 'export.jsonl', bytes: 5 }), { before: 'processing', changed: true })
  t.match(await store.get('f'), { status: 'completed', progress: 100, bytes: 5, file: 'export.jsonl' })
  t.same(await store.finish('f', 'cancelled'), { before: 'completed', changed: false }, 'a finished export never changes')
  const last = (await store.events('f')).at(-1)!
  t.same([last.type, last.data], ['completed', { status: 'completed', progress: 100, processedItems: 0, bytes: 5 }])

  await store.create(record('g'))
  await store.claimSegment('g', 0, 'r')
  t.same(await store.finish('g', 'failed', { error: 'segment 0: boom' }), { before: 'processing', changed: true })
  t.equal(await store.commitPage('g', 0, 'r', page({ ...FRESH_CHECKPOINT }, 1), 0.5, 2), 'failed', 'segments stop')
  t.same((await store.claimSegment('g', 1, 'r')).status, 'failed', 'and do not start')
  t.match((await store.events('g')).at(-1), { type: 'failed', data: { error: 'segment 0: boom' } })

  t.same(await store.finish('nope', 'cancelled'), { before: 'missing', changed: false })
  t.equal(await store.commitPage('nope', 0, 'r', page({ ...FRESH_CHECKPOINT }, 1), 0.5, 2), 'missing')
  t.same(await redis.hgetall(keys.exportOutcomes), { completed: '1', failed: '1' }, 'each export counted once, by the status it ended in (metrics)')
})

t.test('events: ids in order, replay after an id, snapshot with the latest id; remove leaves nothing', async (t) => {
  const { store, keys } = fresh()
  await store.create(record('v'))
  await store.claimSegment('v', 0, 'r')
  await store.raiseProgress('v', 50)
  await store.finish('v', 'cancelled')
  const all = await store.events('v')
  t.same(
    all.map((e) => e.type),
    ['progress', 'progress', 'progress', 'cancelled'],
  )
  t.same(await store.events('v', all[1]!.id), all.slice(2), 'only what came after')
  const snapshot = await store.snapshot('v')
  t.equal(snapshot.lastEventId, all[3]!.id)
  t.equal(snapshot.record!.status, 'cancelled')
  t.same(await store.snapshot('none'), {})
  t.ok(await store.markMailSent('v', 'export-failed', 'm1'))
  t.notOk(await store.markMailSent('v', 'export-failed', 'm2'), 'marked once')
  t.ok(await store.mailSent('v', 'export-failed'))
  t.notOk('mail:export-failed' in (await store.get('v'))!, 'markers are not part of the record')
  await store.remove('v')
  t.equal(await store.get('v'), undefined)
  t.equal(await redis.exists(keys.exportRecord('v', 'events'), keys.exportRecord('v', 'seg'), keys.exportHistory), 0)
})

t.test('progress feed: stored events first, then live ones, once each, for any number of followers', async (t) => {
  const { store } = fresh()
  const feed = createProgressFeed({ store, connect: () => new Redis(server.url), blockMs: 200 })
  t.teardown(() => feed.close())
  await store.create(record('live'))
  const stored = await store.events('live')
  const seen: { a: ExportEvent[]; b: ExportEvent[] } = { a: [], b: [] }
  const stopA = await feed.follow('live', undefined, (e) => seen.a.push(e))
  const stopB = await feed.follow('live', stored[0]!.id, (e) => seen.b.push(e))
  t.same(seen.a, stored, 'the stored event at once')
  await store.claimSegment('live', 0, 'r')
  for (let p = 10; p <= 40; p += 10) await store.raiseProgress('live', p)
  await store.finish('live', 'cancelled')
  const all = await store.events('live')
  for (let i = 0; i < 50 && seen.a.length < all.length; i++) await new Promise((r) => setTimeout(r, 50))
  t.same(seen.a, all, 'follower A: everything, in order, once')
  t.same(seen.b, all.slice(1), 'follower B: everything after its Last-Event-ID')
  stopA()
  stopB()
  // A follower that joins later, after the last id it had, gets only the rest.
  const late: ExportEvent[] = []
  const stopLate = await feed.follow('live', all[3]!.id, (e) => late.push(e))
  t.same(late, all.slice(4))
  stopLate()
})
