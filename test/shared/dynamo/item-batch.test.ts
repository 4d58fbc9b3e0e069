import t from 'tap'
import { ItemBatch, loadThroughBatch, runInItemBatch } from '../../../src/shared/dynamo/item-batch.ts'
import type { AttributeMap } from '../../../src/shared/dynamo/item-json.ts'

const key = (i: number) => ({ id: { N: String(i) } })

t.test('the loads of a batch become one fetch once every read has loaded or settled, whatever the order', async (t) => {
  const calls: number[][] = []
  const fetch = async (keys: Array<Record<string, { N?: string }>>) => {
    calls.push(keys.map((k) => Number(k.id!.N)))
    return keys.map((k) => (k.id!.N === '3' ? undefined : { ...k, v: { S: 'x' } }))
  }
  const batch = new ItemBatch(5)
  let release!: () => void
  const slowHit = new Promise<void>((resolve) => {
    release = resolve
  })
  const reads = [0, 1, 2, 3, 4].map((i) =>
    runInItemBatch(batch, i, async () => {
      if (i === 2) {
        await slowHit // a hit that answers late: the fetch must wait for it
        return 'hit'
      }
      if (i === 4) return 'hit'
      return (await loadThroughBatch(key(i), fetch)) ?? 'missing'
    }),
  )
  await new Promise((resolve) => setImmediate(resolve))
  t.same(calls, [], 'nothing fetched while a read is undecided')
  release()
  const out = await Promise.all(reads)
  t.same(calls, [[0, 1, 3]], 'one fetch of exactly the loads')
  t.same(out, [{ id: { N: '0' }, v: { S: 'x' } }, { id: { N: '1' }, v: { S: 'x' } }, 'hit', 'missing', 'hit'])
})

t.test('no fetch when every read hit; a failed fetch fails its loads; outside a batch nothing joins', async (t) => {
  const batch = new ItemBatch(2)
  let fetched = 0
  await Promise.all([0, 1].map((i) => runInItemBatch(batch, i, async () => i)))
  t.equal(fetched, 0)
  t.equal(
    loadThroughBatch(key(1), async () => {
      fetched++
      return []
    }),
    undefined,
  )

  const failing = new ItemBatch(2)
  const boom = async () => {
    throw new Error('boom')
  }
  const results = await Promise.allSettled([0, 1].map((i) => runInItemBatch(failing, i, async () => loadThroughBatch(key(i), boom))))
  t.same(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  )
  const rejected = failing.load(0, key(0), boom)
  t.equal(rejected, undefined, 'a fired batch takes no more loads (the read falls back to its own)')
})

t.test('two batches each waiting on the other (joined loads) both fetch once the wait bound passes', async (t) => {
  const fetched: string[] = []
  const fetcher = (name: string) => async (keys: AttributeMap[]) => {
    fetched.push(name)
    return keys.map((k) => ({ ...k }))
  }
  const a = new ItemBatch(2, 20)
  const b = new ItemBatch(2, 20)
  let aLoad!: Promise<unknown>
  let bLoad!: Promise<unknown>
  // Each batch loads one key and, for its other key, joins the other batch's load (as single-flight would).
  const aReads = [
    runInItemBatch(a, 0, async () => (aLoad = loadThroughBatch(key(1), fetcher('a'))!)),
    runInItemBatch(a, 1, async () => {
      await new Promise((r) => setImmediate(r))
      return bLoad
    }),
  ]
  const bReads = [
    runInItemBatch(b, 0, async () => (bLoad = loadThroughBatch(key(2), fetcher('b'))!)),
    runInItemBatch(b, 1, async () => {
      await new Promise((r) => setImmediate(r))
      return aLoad
    }),
  ]
  const out = await Promise.all([...aReads, ...bReads])
  t.same(fetched.sort(), ['a', 'b'])
  t.same(out, [key(1), key(2), key(2), key(1)])
})
