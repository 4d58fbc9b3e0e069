import t from 'tap'
import { createOwedInvalidations } from '../../../src/shared/cache/owed-invalidations.ts'
import { waitFor } from '../../helpers/wait.ts'

/** A Redis connection as the owed invalidations see it: ready or not, bumps that fail while it is down. */
function rig(retryMs = 10) {
  let ready = false
  let refuse = false
  const listeners: Array<() => void> = []
  const invalidated: string[] = []
  const warnings: object[] = []
  const infos: object[] = []
  const owed = createOwedInvalidations({
    invalidate: async (table) => {
      if (!ready || refuse) throw new Error('Connection is closed.')
      invalidated.push(table)
    },
    ready: () => ready,
    onReady: (listener) => listeners.push(listener),
    logger: { info: (o) => infos.push(o), warn: (o) => warnings.push(o), error() {} },
    retryMs,
  })
  t.teardown(() => owed.close())
  return {
    owed,
    invalidated,
    warnings,
    infos,
    up() {
      ready = true
      for (const l of listeners) l()
    },
    refuseWhileReady(on: boolean) {
      refuse = on
      ready = true
    },
  }
}

t.test('owed while Redis is down; each table invalidated once, when it is ready again', async (t) => {
  const r = rig(60_000)
  r.owed.owe('orders')
  r.owed.owe('orders')
  r.owed.owe('users')
  t.equal(r.owed.size, 2, 'one per table')
  t.same(r.warnings, [
    { msg: 'cache.invalidation.owed', table: 'orders' },
    { msg: 'cache.invalidation.owed', table: 'users' },
  ])
  t.same(r.invalidated, [], 'nothing can be done while it is down')
  r.up()
  await r.owed.settled()
  t.same(r.invalidated.sort(), ['orders', 'users'])
  t.equal(r.owed.size, 0)
  t.same(r.infos.map((i) => (i as { table: string }).table).sort(), ['orders', 'users'])
})

t.test('a bump that fails while the connection says ready (a timeout) is tried again until it lands', async (t) => {
  const r = rig(10)
  r.refuseWhileReady(true)
  r.owed.owe('orders')
  await r.owed.settled()
  t.equal(r.owed.size, 1, 'still owed after the failed try')
  r.refuseWhileReady(false)
  await waitFor('the retry to land', async () => r.owed.size === 0, 10_000, 5)
  t.same(r.invalidated, ['orders'])
})

t.test('owed while ready: made at once', async (t) => {
  const r = rig(60_000)
  r.refuseWhileReady(false)
  r.owed.owe('orders')
  await r.owed.settled()
  t.same(r.invalidated, ['orders'])
  t.equal(r.owed.size, 0)
})
