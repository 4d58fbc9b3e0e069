import t from 'tap'
import type { EntryHeaders } from '../../src/api/cached-reply.ts'
import type { BudgetAnswer } from '../../src/api/key-budget.ts'
import { createLaneHeaders } from '../../src/api/lane-headers.ts'

// The hit lane's prebuilt header lists: each answer must get exactly the list a fresh build would give.

const FIXED = ['x-content-type-options', 'nosniff', 'access-control-expose-headers', 'etag']
const entry = (ageS: number): EntryHeaders => ({
  outcome: 'hit',
  createdAt: 1,
  ttl: 300,
  staleThreshold: 0.8,
  staleIfError: 300,
  ttlLeft: 240 - ageS,
  ageS,
  cacheStatus: `dynacache; hit; ttl=${240 - ageS}`,
  cacheControl: `max-age=${240 - ageS}`,
  age: String(ageS),
})
const rate = (remaining: number, resetS = 60, limit = 600): BudgetAnswer => ({ allowed: true, limit, remaining, resetS })
const GZIP = Buffer.from('gzip-bytes')
const PLAIN = Buffer.from('{"plain":true}')

/** The list as a new builder makes it: what every answer must equal. */
const fresh = (...args: Parameters<ReturnType<typeof createLaneHeaders>>) => [...createLaneHeaders(FIXED)(...args)]
const headerValue = (list: string[], name: string) => list[list.indexOf(name) + 1]

t.test('every answer gets the list a fresh build gives, whatever changed since the last one', async (t) => {
  const headersFor = createLaneHeaders(FIXED)
  const e0 = entry(0)
  const e1 = entry(1)
  const steps: Array<Parameters<typeof headersFor>> = [
    [rate(599), { etag: 'W/"a"' }, e0, GZIP, true],
    [rate(598), { etag: 'W/"a"' }, e0, GZIP, true],
    [rate(597, 59), { etag: 'W/"a"' }, e0, GZIP, true],
    [rate(596, 59), { etag: 'W/"a"' }, e1, GZIP, true],
    [rate(595, 59), { etag: 'W/"a"' }, e1, PLAIN, false],
    [rate(594, 59), { etag: 'W/"a"' }, e1, undefined, true],
    [rate(593, 59), { etag: 'W/"b"' }, e1, GZIP, true],
    [rate(592, 59), { etag: 'W/"b"' }, e1, Buffer.from('longer-gzip-bytes'), true],
    [rate(99, 59, 100), { etag: 'W/"b"' }, e1, GZIP, true],
    [rate(98, 58, 100), { etag: 'W/"b"' }, e1, GZIP, true],
    [rate(49, 58, 50), { etag: 'W/"b"' }, e1, GZIP, true],
  ]
  for (const [i, step] of steps.entries()) t.same([...headersFor(...step)], fresh(...step), `answer ${i}`)
})

t.test('a list holds the fixed headers, then the per-answer ones, each once', async (t) => {
  const list = fresh(rate(7, 30), { etag: 'W/"a"' }, entry(3), GZIP, true)
  t.same(list.slice(0, FIXED.length), FIXED)
  t.equal(headerValue(list, 'ratelimit-remaining'), '7')
  t.equal(headerValue(list, 'ratelimit-reset'), '30')
  t.equal(headerValue(list, 'age'), '3')
  t.equal(headerValue(list, 'content-encoding'), 'gzip')
  t.equal(headerValue(list, 'content-length'), String(GZIP.length))
  const notModified = fresh(rate(7, 30), { etag: 'W/"a"' }, entry(3), undefined, true)
  t.equal(notModified.includes('content-type'), false, 'a 304 has no body headers')
  t.equal(notModified.includes('content-length'), false)
  const plain = fresh(rate(7, 30), { etag: 'W/"a"' }, entry(3), PLAIN, false)
  t.equal(plain.includes('content-encoding'), false)
  t.equal(headerValue(plain, 'content-length'), String(PLAIN.length))
})
