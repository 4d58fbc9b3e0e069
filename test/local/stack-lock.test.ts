import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { acquireStackLock, LOCK_FILE, StackBusyError } from '../../src/local/stack-lock.ts'

t.test('one owner at a time: a running owner is refused in one line', async (t) => {
  const dir = t.testdir()
  const lock = await acquireStackLock(dir)
  const err = await acquireStackLock(dir, { waitMs: 0 }).catch((e) => e)
  t.type(err, StackBusyError)
  t.match(err.message, new RegExp(`another local stack \\(pid ${process.pid}\\) is running on this folder`))
  await lock.release()
  const again = await acquireStackLock(dir)
  t.ok(again, 'free once released')
  await again.release()
})

t.test('a stopping owner is waited for, then the folder is taken', async (t) => {
  const dir = t.testdir()
  const lock = await acquireStackLock(dir)
  await lock.markStopping()
  const waitedFor: number[] = []
  let waiting!: () => void
  const told = new Promise<void>((resolve) => {
    waiting = resolve
  })
  const next = acquireStackLock(dir, {
    onWait: (pid) => {
      waitedFor.push(pid)
      waiting()
    },
  })
  // The new start is waiting; the old one finishes stopping.
  await told
  await lock.release()
  const taken = await next
  t.same(waitedFor, [process.pid], 'said once whom it waits for')
  t.equal(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).state, 'running')
  await taken.release()
})

t.test('an owner that died without cleaning up is replaced', async (t) => {
  const dir = t.testdir()
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: 999_999_999, state: 'running' }))
  const lock = await acquireStackLock(dir, { isAlive: () => false })
  t.equal(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).pid, process.pid)
  await lock.release()
})

t.test('two starts at the same moment: exactly one wins', async (t) => {
  const dir = t.testdir()
  const results = await Promise.allSettled([acquireStackLock(dir, { waitMs: 0 }), acquireStackLock(dir, { waitMs: 0 })])
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  t.type((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason, StackBusyError)
})

t.test('a stopping owner that never finishes is reported after the wait', async (t) => {
  const dir = t.testdir()
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, state: 'stopping' }))
  const err = await acquireStackLock(dir, { waitMs: 200 }).catch((e) => e)
  t.match(err.message, /did not finish stopping in time/)
})
