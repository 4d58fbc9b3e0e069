import t from 'tap'
import { type BudgetRedis, createKeyBudget } from '../../src/api/key-budget.ts'

/** An in-memory stand-in for dcRateLease.lua (SET NX PX, INCRBY, PTTL in one step); counts round trips. */
function fakeRedis(clock: { now: number }) {
  const values = new Map<string, { value: number; expiresAt: number }>()
  const live = (key: string) => {
    const entry = values.get(key)
    if (entry && entry.expiresAt <= clock.now) values.delete(key)
    return values.get(key)
  }
  let roundTrips = 0
  const redis: BudgetRedis = {
    status: 'ready',
    async dcRateLease(key, windowMs, tokens) {
      roundTrips++
      await new Promise((r) => setImmediate(r))
      const entry = live(key) ?? { value: 0, expiresAt: clock.now + windowMs }
      entry.value += tokens
      values.set(key, entry)
      return [entry.value, entry.expiresAt - clock.now]
    },
  }
  return { redis, roundTrips: () => roundTrips }
}

const spend = async (budget: ReturnType<typeof createKeyBudget>, client: string) => {
  const answer = await budget.consume(client)
  return answer?.allowed ?? true
}

t.test('no Redis round trip per request: one per lease', async (t) => {
  const clock = { now: 1_000_000 }
  const fake = fakeRedis(clock)
  const budget = createKeyBudget(fake.redis, { limit: 60_000, windowMs: 60_000, counterKey: (c) => `rl:${c}`, now: () => clock.now })
  t.equal(budget.lease, 1000)
  let synchronous = 0
  let allowed = 0
  for (let i = 0; i < 5000; i++) {
    const answer = budget.consume('key:a')
    if (answer && !(answer instanceof Promise)) synchronous++
    if ((await answer)?.allowed) allowed++
  }
  t.equal(allowed, 5000)
  t.ok(fake.roundTrips() <= 7, `${fake.roundTrips()} round trips for 5,000 requests`)
  t.ok(synchronous >= 4990, `${synchronous} of 5,000 answered without waiting on Redis`)
})

t.test('two processes on one counter never admit more than the limit, and at most 1.5 leases fewer', async (t) => {
  const clock = { now: 1_000_000 }
  const fake = fakeRedis(clock)
  const options = { limit: 600, windowMs: 60_000, counterKey: (c: string) => `rl:${c}`, now: () => clock.now }
  const processes = [createKeyBudget(fake.redis, options), createKeyBudget(fake.redis, options)]
  let admitted = 0
  for (let batch = 0; batch < 20; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => spend(processes[i % 2]!, 'key:a')))
    admitted += answers.filter(Boolean).length
  }
  t.ok(admitted <= 600, `admitted ${admitted} of 1,000`)
  t.ok(admitted >= 600 - 1.5 * processes[0]!.lease, `admitted ${admitted}, tolerance ${1.5 * processes[0]!.lease}`)
  // Once exhausted, a process refuses without asking Redis again.
  const before = fake.roundTrips()
  for (let i = 0; i < 100; i++) t.equal(await spend(processes[0]!, 'key:a'), false)
  t.equal(fake.roundTrips(), before, 'refusals cost no round trip')
  // Another key has its own counter.
  t.equal(await spend(processes[1]!, 'key:b'), true)
})

t.test('the window ends when the counter expires: the full limit again after it', async (t) => {
  const clock = { now: 1_000_000 }
  const fake = fakeRedis(clock)
  const budget = createKeyBudget(fake.redis, { limit: 10, windowMs: 60_000, counterKey: (c) => `rl:${c}`, now: () => clock.now })
  const first = []
  for (let i = 0; i < 12; i++) first.push(await spend(budget, 'key:a'))
  t.same(first, [...Array(10).fill(true), false, false])
  const refused = await budget.consume('key:a')
  t.equal(refused?.remaining, 0)
  t.equal(refused?.resetS, 60, 'Retry-After: the counter expires 60 s after the first lease')
  clock.now += 30_000
  t.equal((await budget.consume('key:a'))?.resetS, 30)
  clock.now += 30_001
  const again = []
  for (let i = 0; i < 11; i++) again.push(await spend(budget, 'key:a'))
  t.same(again, [...Array(10).fill(true), false])
})

t.test('Redis not ready or failing: requests are allowed, not refused or held', async (t) => {
  const down = createKeyBudget(
    {
      status: 'reconnecting',
      dcRateLease: () => {
        throw new Error('not called')
      },
    },
    { limit: 1, windowMs: 60_000, counterKey: (c) => c },
  )
  t.equal(down.consume('key:a'), undefined)
  const failing: BudgetRedis = {
    status: 'ready',
    dcRateLease: async () => {
      throw new Error('timeout')
    },
  }
  const budget = createKeyBudget(failing, { limit: 1, windowMs: 60_000, counterKey: (c) => c })
  for (let i = 0; i < 3; i++) t.equal(await spend(budget, 'key:a'), true)
})

t.test('spendHeld (the hit lane) spends only a token this process holds, and changes nothing otherwise', async (t) => {
  const clock = { now: 5_000_000 }
  const fake = fakeRedis(clock)
  const budget = createKeyBudget(fake.redis, { limit: 100, windowMs: 60_000, lease: 4, counterKey: (c) => `rl:${c}`, now: () => clock.now })
  t.equal(budget.spendHeld('key:a'), undefined, 'no lease taken yet: left to consume')
  t.equal(fake.roundTrips(), 0, 'and Redis was not asked')
  t.equal(await spend(budget, 'key:a'), true, 'consume takes a lease of 4 and spends one')
  const trips = fake.roundTrips()
  const held = [budget.spendHeld('key:a'), budget.spendHeld('key:a'), budget.spendHeld('key:a')]
  t.same(
    held.map((a) => a?.allowed),
    [true, true, true],
    'the three tokens held are spent synchronously',
  )
  t.same(held[0], { allowed: true, limit: 100, remaining: 98, resetS: 60 }, 'with the RateLimit figures of the window (4 leased, 2 held after it)')
  // The background refill started by the spends may land; either way no more than held + leased is spent.
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  let spent = 4
  while (budget.spendHeld('key:a') !== undefined) spent++
  t.ok(spent <= 8, `only what leases brought, never a lease of its own: ${spent} of at most 2 leases`)
  t.ok(fake.roundTrips() >= trips, 'refills are the only round trips')
  clock.now += 60_001
  t.equal(budget.spendHeld('key:a'), undefined, 'a new window: nothing held, left to consume')
  ;(fake.redis as { status: string }).status = 'end'
  t.equal(budget.spendHeld('key:b'), undefined, 'Redis not ready: left to consume (which allows)')
})
