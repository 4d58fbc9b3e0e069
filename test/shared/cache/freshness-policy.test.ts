import t from 'tap'
import { freshForMs, freshnessOf, freshSecondsLeft, staleWindowSeconds } from '../../../src/shared/cache/freshness.ts'

const policy = { staleThreshold: 0.75 }
const entry = { createdAt: 1_000_000, ttl: 100 }

t.test('fresh before ttl x threshold, stale until ttl, expired from ttl on', async (t) => {
  t.equal(freshForMs(100, policy), 75_000)
  t.equal(freshnessOf(entry, entry.createdAt, policy), 'fresh')
  t.equal(freshnessOf(entry, entry.createdAt + 74_999, policy), 'fresh')
  t.equal(freshnessOf(entry, entry.createdAt + 75_000, policy), 'stale', 'the boundary itself is stale')
  t.equal(freshnessOf(entry, entry.createdAt + 99_999, policy), 'stale')
  t.equal(freshnessOf(entry, entry.createdAt + 100_000, policy), 'expired', 'the ttl itself is expired')
  t.equal(freshnessOf(entry, entry.createdAt - 5, policy), 'fresh', 'a clock a little behind the writer still reads fresh')
})

t.test('threshold 1 has no stale window; threshold 0 is never fresh', async (t) => {
  t.equal(freshnessOf(entry, entry.createdAt + 99_999, { staleThreshold: 1 }), 'fresh')
  t.equal(staleWindowSeconds(100, { staleThreshold: 1 }), 0)
  t.equal(freshnessOf(entry, entry.createdAt, { staleThreshold: 0 }), 'stale')
  t.equal(staleWindowSeconds(100, { staleThreshold: 0 }), 100)
})

t.test('seconds left for Cache-Status and the stale window for Cache-Control', async (t) => {
  t.equal(freshSecondsLeft(entry, entry.createdAt, policy), 75)
  t.equal(freshSecondsLeft(entry, entry.createdAt + 74_001, policy), 0)
  t.equal(freshSecondsLeft(entry, entry.createdAt + 80_000, policy), -5, 'negative once stale')
  t.equal(staleWindowSeconds(100, policy), 25)
  t.equal(staleWindowSeconds(30, { staleThreshold: 0.9 }), 3, 'rounded up: never advertises less than the real window')
})
