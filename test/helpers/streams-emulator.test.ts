import { BatchWriteItemCommand, CreateTableCommand, DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  ListStreamsCommand,
  type ShardIteratorType,
} from '@aws-sdk/client-dynamodb-streams'
import t from 'tap'
import { startDynalite } from '../../src/local/services/dynalite.ts'
import { startDynamoProxy } from './dynamo-proxy.ts'
import { ITERATOR_TTL_MS, startStreamsEmulator, type ViewType } from './streams-emulator.ts'

// The emulator is checked with the official Streams client before the follower relies on it.
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' }
const dynalite = await startDynalite()
t.teardown(() => dynalite.stop())
const emulator = await startStreamsEmulator()
t.teardown(() => emulator.close())
const proxy = await startDynamoProxy(dynalite.endpoint, {}, { tap: emulator.writeTap(dynalite.endpoint) })
t.teardown(() => proxy.close())
const dynamo = new DynamoDBClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials })
const streams = new DynamoDBStreamsClient({ endpoint: emulator.endpoint, region: 'us-east-1', credentials })
t.teardown(() => {
  dynamo.destroy()
  streams.destroy()
})

let tables = 0
async function streamTable(viewType: ViewType | null = 'NEW_AND_OLD_IMAGES') {
  const name = `streams_${++tables}`
  await dynamo.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      ...(viewType ? { StreamSpecification: { StreamEnabled: true, StreamViewType: viewType } } : {}),
    }),
  )
  return name
}

const key = (pk: string, sk = 's') => ({ pk: { S: pk }, sk: { S: sk } })
const put = (table: string, pk: string, v: string) => dynamo.send(new PutItemCommand({ TableName: table, Item: { ...key(pk), v: { S: v } } }))

async function arnOf(table: string) {
  const { Streams } = await streams.send(new ListStreamsCommand({ TableName: table }))
  return Streams![0]!.StreamArn!
}

async function shardsOf(arn: string) {
  return (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards!
}

async function iterator(arn: string, shardId: string, type: ShardIteratorType, seq?: string) {
  const out = await streams.send(
    new GetShardIteratorCommand({ StreamArn: arn, ShardId: shardId, ShardIteratorType: type, ...(seq ? { SequenceNumber: seq } : {}) }),
  )
  return out.ShardIterator!
}

/** Reads a shard from an iterator until a page comes back empty (or the shard ends). */
async function drain(start: string) {
  const records: _Record[] = []
  let it: string | undefined = start
  let last: string | undefined
  while (it) {
    const out: GetRecordsCommandOutput = await streams.send(new GetRecordsCommand({ ShardIterator: it }))
    records.push(...(out.Records ?? []))
    last = it
    it = out.NextShardIterator
    if ((out.Records ?? []).length === 0) break
  }
  return { records, next: it, last }
}

t.test('a stream enabled by CreateTable is listed and described with the documented shapes', async (t) => {
  const table = await streamTable('NEW_IMAGE')
  const plain = await streamTable(null)
  const listed = await streams.send(new ListStreamsCommand({}))
  t.ok(
    listed.Streams!.some((s) => s.TableName === table),
    'the stream table is listed',
  )
  t.notOk(
    listed.Streams!.some((s) => s.TableName === plain),
    'a table without StreamSpecification has no stream',
  )
  const arn = await arnOf(table)
  t.match(arn, new RegExp(`^arn:aws:dynamodb:us-east-1:\\d{12}:table/${table}/stream/`))
  const { StreamDescription: d } = await streams.send(new DescribeStreamCommand({ StreamArn: arn }))
  t.equal(d!.StreamStatus, 'ENABLED')
  t.equal(d!.StreamViewType, 'NEW_IMAGE')
  t.equal(d!.TableName, table)
  t.same(d!.KeySchema, [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ])
  t.ok(d!.CreationRequestDateTime instanceof Date, 'CreationRequestDateTime parses as a date')
  t.equal(d!.Shards!.length, 1)
  t.match(d!.Shards![0]!.SequenceNumberRange!.StartingSequenceNumber, /^\d{21,}$/)
  t.equal(d!.Shards![0]!.SequenceNumberRange!.EndingSequenceNumber, undefined, 'the open shard has no end')
  await t.rejects(streams.send(new DescribeStreamCommand({ StreamArn: `${arn}x` })), { name: 'ResourceNotFoundException' })
})

t.test('writes through the proxy become INSERT, MODIFY and REMOVE records in order, with both images', async (t) => {
  const table = await streamTable()
  const arn = await arnOf(table)
  await put(table, 'a', '1')
  await dynamo.send(new UpdateItemCommand({ TableName: table, Key: key('a'), UpdateExpression: 'SET v = :v', ExpressionAttributeValues: { ':v': { S: '2' } } }))
  await put(table, 'a', '2') // changes nothing: no record
  await dynamo.send(new DeleteItemCommand({ TableName: table, Key: key('a') }))
  await dynamo.send(new DeleteItemCommand({ TableName: table, Key: key('missing') })) // deletes nothing: no record
  await dynamo.send(
    new BatchWriteItemCommand({
      RequestItems: { [table]: [{ PutRequest: { Item: { ...key('b'), v: { S: 'x' } } } }, { PutRequest: { Item: { ...key('c'), v: { S: 'y' } } } }] },
    }),
  )
  const [shard] = await shardsOf(arn)
  const { records } = await drain(await iterator(arn, shard!.ShardId!, 'TRIM_HORIZON'))
  t.same(
    records.map((r) => [r.eventName, r.dynamodb!.Keys!.pk!.S]),
    [
      ['INSERT', 'a'],
      ['MODIFY', 'a'],
      ['REMOVE', 'a'],
      ['INSERT', 'b'],
      ['INSERT', 'c'],
    ],
  )
  const [insert, modify, remove] = records
  t.same(insert!.dynamodb!.NewImage, { ...key('a'), v: { S: '1' } })
  t.equal(insert!.dynamodb!.OldImage, undefined, 'an INSERT has no old image')
  t.same(modify!.dynamodb!.OldImage, { ...key('a'), v: { S: '1' } })
  t.same(modify!.dynamodb!.NewImage, { ...key('a'), v: { S: '2' } })
  t.same(remove!.dynamodb!.OldImage, { ...key('a'), v: { S: '2' } })
  t.equal(remove!.dynamodb!.NewImage, undefined, 'a REMOVE has no new image')
  const seqs = records.map((r) => BigInt(r.dynamodb!.SequenceNumber!))
  t.ok(
    seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
    'sequence numbers increase',
  )
  for (const r of records) {
    t.equal(r.eventSource, 'aws:dynamodb')
    t.equal(r.dynamodb!.StreamViewType, 'NEW_AND_OLD_IMAGES')
    t.ok(r.dynamodb!.ApproximateCreationDateTime instanceof Date)
    t.ok(r.dynamodb!.SizeBytes! > 0)
  }
  const paged = await streams.send(new GetRecordsCommand({ ShardIterator: await iterator(arn, shard!.ShardId!, 'TRIM_HORIZON'), Limit: 2 }))
  t.equal(paged.Records!.length, 2, 'Limit bounds a page')
  const rest = await drain(paged.NextShardIterator!)
  t.equal(rest.records.length, 3, 'the next iterator goes on after the page')
})

t.test('each view type gives the images it documents', async (t) => {
  const views: ViewType[] = ['KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES']
  for (const view of views) {
    const table = await streamTable(view)
    await put(table, 'k', '1')
    await put(table, 'k', '2')
    const arn = await arnOf(table)
    const [shard] = await shardsOf(arn)
    const { records } = await drain(await iterator(arn, shard!.ShardId!, 'TRIM_HORIZON'))
    const modify = records[1]!.dynamodb!
    t.same(modify.Keys, key('k'), `${view}: keys`)
    t.equal(modify.NewImage !== undefined, view === 'NEW_IMAGE' || view === 'NEW_AND_OLD_IMAGES', `${view}: new image`)
    t.equal(modify.OldImage !== undefined, view === 'OLD_IMAGE' || view === 'NEW_AND_OLD_IMAGES', `${view}: old image`)
  }
})

t.test('iterator types: TRIM_HORIZON, LATEST, AT_ and AFTER_SEQUENCE_NUMBER', async (t) => {
  const table = await streamTable()
  const arn = await arnOf(table)
  for (const v of ['1', '2', '3']) await put(table, v, v)
  const shardId = (await shardsOf(arn))[0]!.ShardId!
  const all = (await drain(await iterator(arn, shardId, 'TRIM_HORIZON'))).records
  t.equal(all.length, 3)
  const second = all[1]!.dynamodb!.SequenceNumber!
  const at = (await drain(await iterator(arn, shardId, 'AT_SEQUENCE_NUMBER', second))).records
  t.same(
    at.map((r) => r.dynamodb!.Keys!.pk!.S),
    ['2', '3'],
  )
  const after = (await drain(await iterator(arn, shardId, 'AFTER_SEQUENCE_NUMBER', second))).records
  t.same(
    after.map((r) => r.dynamodb!.Keys!.pk!.S),
    ['3'],
  )
  const latest = await iterator(arn, shardId, 'LATEST')
  const empty = await streams.send(new GetRecordsCommand({ ShardIterator: latest }))
  t.same(empty.Records, [], 'LATEST starts after the last record')
  t.ok(empty.NextShardIterator, 'an open shard always gives a next iterator')
  await put(table, '4', '4')
  const later = await streams.send(new GetRecordsCommand({ ShardIterator: empty.NextShardIterator! }))
  t.same(
    later.Records!.map((r) => r.dynamodb!.Keys!.pk!.S),
    ['4'],
    'the next iterator sees the new record',
  )
  await t.rejects(streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER' })), {
    name: 'ValidationException',
  })
  await t.rejects(streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: 'shardId-nope', ShardIteratorType: 'LATEST' })), {
    name: 'ResourceNotFoundException',
  })
})

t.test('an iterator expires after 15 minutes of the injected clock', async (t) => {
  const table = await streamTable()
  const arn = await arnOf(table)
  await put(table, 'e', '1')
  const shardId = (await shardsOf(arn))[0]!.ShardId!
  const first = await streams.send(new GetRecordsCommand({ ShardIterator: await iterator(arn, shardId, 'TRIM_HORIZON') }))
  const seq = first.Records![0]!.dynamodb!.SequenceNumber!
  emulator.advance(ITERATOR_TTL_MS + 1000)
  await t.rejects(streams.send(new GetRecordsCommand({ ShardIterator: first.NextShardIterator! })), { name: 'ExpiredIteratorException' })
  await put(table, 'e', '2')
  const renewed = await streams.send(new GetRecordsCommand({ ShardIterator: await iterator(arn, shardId, 'AFTER_SEQUENCE_NUMBER', seq) }))
  t.same(
    renewed.Records!.map((r) => r.dynamodb!.NewImage!.v!.S),
    ['2'],
    'a fresh iterator after the checkpoint goes on',
  )
})

t.test('a split closes the parent with an ending sequence number and opens two children', async (t) => {
  const table = await streamTable()
  const arn = await arnOf(table)
  await put(table, 'p', 'before')
  const parentId = (await shardsOf(arn))[0]!.ShardId!
  const parentIt = await iterator(arn, parentId, 'TRIM_HORIZON')
  const [a, b] = emulator.split(table)
  for (let i = 0; i < 20; i++) await put(table, `k${i}`, 'after')
  const shards = await shardsOf(arn)
  t.equal(shards.length, 3)
  const parent = shards.find((s) => s.ShardId === parentId)!
  t.match(parent.SequenceNumberRange!.EndingSequenceNumber, /^\d{21,}$/, 'the closed parent has an end')
  t.same(
    shards.filter((s) => s.ParentShardId === parentId).map((s) => s.ShardId),
    [a, b],
    'both children name the parent',
  )
  const fromParent = await drain(parentIt)
  t.same(
    fromParent.records.map((r) => r.dynamodb!.Keys!.pk!.S),
    ['p'],
  )
  const end = await streams.send(new GetRecordsCommand({ ShardIterator: (await drain(parentIt)).last! }))
  t.equal(end.NextShardIterator, undefined, 'a closed shard read to its end gives no next iterator')
  let children = 0
  for (const child of [a, b]) children += (await drain(await iterator(arn, child, 'TRIM_HORIZON'))).records.length
  t.equal(children, 20, 'every write after the split is in one of the children')
  const rolled = emulator.rollover(table)
  t.equal(rolled.length, 2, 'a rollover gives each open shard one child')
})

t.test('trimming: a trimmed position answers TrimmedDataAccessException, TRIM_HORIZON starts after it', async (t) => {
  const table = await streamTable()
  const arn = await arnOf(table)
  await put(table, 't', '1')
  const shardId = (await shardsOf(arn))[0]!.ShardId!
  const before = await iterator(arn, shardId, 'TRIM_HORIZON')
  const { records } = await drain(before)
  await put(table, 't', '2')
  emulator.trim(table)
  await t.rejects(streams.send(new GetRecordsCommand({ ShardIterator: before })), { name: 'TrimmedDataAccessException' })
  await t.rejects(
    streams.send(
      new GetShardIteratorCommand({
        StreamArn: arn,
        ShardId: shardId,
        ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
        SequenceNumber: records[0]!.dynamodb!.SequenceNumber!,
      }),
    ),
    {
      name: 'TrimmedDataAccessException',
    },
  )
  await put(table, 't', '3')
  const rest = await drain(await iterator(arn, shardId, 'TRIM_HORIZON'))
  t.same(
    rest.records.map((r) => r.dynamodb!.NewImage!.v!.S),
    ['3'],
  )
})

t.test('concurrent writes to one key from many clients chain their images; two tables stay apart', async (t) => {
  const [one, two] = [await streamTable(), await streamTable()]
  await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      Promise.all([
        dynamo.send(
          new UpdateItemCommand({ TableName: one, Key: key('hot'), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } }),
        ),
        put(two, `x${i % 3}`, String(i)),
      ]),
    ),
  )
  const read = async (table: string) => {
    const arn = await arnOf(table)
    return (await drain(await iterator(arn, (await shardsOf(arn))[0]!.ShardId!, 'TRIM_HORIZON'))).records
  }
  const hot = await read(one)
  t.equal(hot.length, 30)
  t.same(
    hot.map((r) => r.dynamodb!.NewImage!.n!.N),
    Array.from({ length: 30 }, (_, i) => String(i + 1)),
    'each record is one increment, in order',
  )
  t.ok(
    hot.every((r, i) => i === 0 || r.dynamodb!.OldImage!.n!.N === hot[i - 1]!.dynamodb!.NewImage!.n!.N),
    "each record's old image is the previous new image",
  )
  const other = await read(two)
  t.ok(other.length > 0 && other.every((r) => r.dynamodb!.Keys!.pk!.S!.startsWith('x')), 'the other table has only its own records')
})
