import t from 'tap'
import { changeOf } from '../../../src/workers/streams/records.ts'
import { DONE, planShards, type ShardInfo } from '../../../src/workers/streams/shard-plan.ts'

const shard = (id: string, parent?: string, closed = false): ShardInfo => ({ id, ...(parent ? { parent } : {}), closed })

t.test('a child is not ready until its parent is done', async (t) => {
  const shards = [shard('p', undefined, true), shard('a', 'p'), shard('b', 'p')]
  t.same(planShards(shards, {}), { ready: ['p'], lost: [], prune: [] }, 'only the parent while it is being read')
  t.same(planShards(shards, { p: 'c:5' }).ready, ['p'], 'a checkpoint is not done')
  t.same(planShards(shards, { p: DONE }).ready, ['a', 'b'], 'both children once the parent is done')
})

t.test('lost history: an unfinished shard gone from the list, or the gone parent of an unstarted child', async (t) => {
  t.same(planShards([shard('x')], { gone: 'c:9' }).lost, ['gone'], 'a checkpointed shard that disappeared')
  const orphan = planShards([shard('a', 'gone')], {})
  t.same(orphan.lost, ['gone'], 'an unstarted child whose parent disappeared unfinished')
  t.same(orphan.ready, ['a'], 'the child is read all the same (after the invalidation)')
  t.same(planShards([shard('a', 'gone')], { a: 'c:3' }), { ready: ['a'], lost: [], prune: [] }, 'a started child is fine')
  t.same(planShards([shard('a', 'gone')], { gone: DONE }), { ready: ['a'], lost: [], prune: [] }, 'a parent finished here is fine')
})

t.test('done shards no longer listed and nobody’s parent are pruned', async (t) => {
  t.same(planShards([shard('b', 'a')], { old: DONE, a: DONE }).prune, ['old'])
})

t.test('records become changes with the images the view type gives', async (t) => {
  const Keys = { pk: { S: '1' } }
  const img = { pk: { S: '1' }, v: { S: 'x' } }
  t.same(changeOf({ eventName: 'INSERT', dynamodb: { Keys } }), { key: Keys, oldImage: null }, 'KEYS_ONLY insert: only "did not exist before"')
  t.same(changeOf({ eventName: 'MODIFY', dynamodb: { Keys } }), { key: Keys }, 'KEYS_ONLY modify: both unknown')
  t.same(changeOf({ eventName: 'REMOVE', dynamodb: { Keys } }), { key: Keys, newImage: null })
  t.same(changeOf({ eventName: 'MODIFY', dynamodb: { Keys, NewImage: img } }), { key: Keys, newImage: img }, 'NEW_IMAGE: old unknown')
  t.same(changeOf({ eventName: 'MODIFY', dynamodb: { Keys, OldImage: img, NewImage: img } }), { key: Keys, oldImage: img, newImage: img })
  t.same(changeOf({ eventName: 'REMOVE', dynamodb: { Keys, OldImage: img } }), { key: Keys, oldImage: img, newImage: null })
})
