import { createHash, randomBytes } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { crc32 } from 'node:zlib'
import type { WriteTap } from './dynamo-proxy.ts'

/**
 * A DynamoDB Streams stand-in for tests (dynalite has no Streams): the Streams API over HTTP (JSON 1.0,
 * X-Amz-Target `DynamoDBStreams_20120810.<Op>`): ListStreams, DescribeStream, GetShardIterator, GetRecords,
 * with the documented shapes and errors. Records come from the writes that pass through the test's
 * DynamoDB proxy (its `writeTap`), which reads each item's image before and after the write.
 *
 * Emulated: per-table streams with a view type, shards with sequence number ranges, records routed to
 * an open shard by key hash, parent -> child rollover and splits (closed shards get
 * EndingSequenceNumber), the four iterator types, 15-minute iterator expiry on an injectable clock,
 * trimming (TrimmedDataAccessException), no record for a write that changes nothing.
 * Not emulated: 24-hour retention by itself (trim is explicit), the 1 MB page cap, throttling
 * (LimitExceededException), userIdentity (TTL deletes), stream re-enabling under a new label.
 */

type Json = Record<string, unknown>
export type Image = Record<string, unknown>
export type ViewType = 'KEYS_ONLY' | 'NEW_IMAGE' | 'OLD_IMAGE' | 'NEW_AND_OLD_IMAGES'

/** An iterator is valid this long after it was handed out (the documented 15 minutes). */
export const ITERATOR_TTL_MS = 15 * 60_000

interface StoredRecord {
  seq: bigint
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE'
  keys: Image
  oldImage?: Image
  newImage?: Image
  at: number
}

interface Shard {
  id: string
  parent?: string
  start: bigint
  /** Set once the shard is closed: the last sequence number it holds (or its start - 1 when empty). */
  end?: bigint
  records: StoredRecord[]
  /** Positions below this were trimmed away (its start until a trim): where TRIM_HORIZON begins. */
  trimmedBelow: bigint
}

interface Stream {
  arn: string
  label: string
  table: string
  viewType: ViewType
  keySchema: Array<{ AttributeName: string; KeyType: 'HASH' | 'RANGE' }>
  createdAt: number
  status: 'ENABLED' | 'DISABLED'
  shards: Shard[]
  /** While true GetRecords answers no records (see pause()). */
  paused: boolean
}

class StreamsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message)
  }
}

export interface StreamsEmulator {
  readonly endpoint: string
  /** Enables a stream on a table (CreateTable / UpdateTable with StreamSpecification through the proxy do the same). */
  enableStream(table: string, viewType: ViewType, keySchema: Stream['keySchema']): string
  /** Marks a table's stream DISABLED (it stays listed, as in DynamoDB); writes no longer make records. */
  disableStream(table: string): void
  /** The ARN of a table's current stream, if it has one. */
  streamArn(table: string): string | undefined
  /** Adds one item change (what the proxy's tap calls); a change that changes nothing makes no record. */
  record(table: string, change: { keys: Image; oldImage: Image | null; newImage: Image | null }): void
  /** Closes every open shard of a table's stream and opens one child per closed shard. */
  rollover(table: string): string[]
  /** Closes one open shard (the first when unnamed) and opens two children of it; returns their ids. */
  split(table: string, shardId?: string): [string, string]
  /**
   * Trims every record written so far on a table's stream: reading a trimmed position then fails with
   * TrimmedDataAccessException; closed shards left empty disappear from DescribeStream.
   */
  trim(table: string): void
  /** While paused, GetRecords on the table's stream answers no records (a lagging stream); records still accumulate. */
  pause(table: string, paused: boolean): void
  /** Moves the emulator's clock forward (iterator expiry, record times). */
  advance(ms: number): void
  /** A tap for startDynamoProxy: reads images around every write on `dynamoEndpoint` and records them. */
  writeTap(dynamoEndpoint: string): WriteTap
  /** Calls served, by operation; `!<ErrorType>` counts the errors answered (e.g. `!ExpiredIteratorException`). */
  count(operation?: string): number
  /** Every GetRecords answered, in order: the shard, how many records, and whether the shard was read to its end. */
  readonly reads: ReadonlyArray<{ shard: string; records: number; ended: boolean }>
  close(): Promise<void>
}

const REGION = 'us-east-1'
const ACCOUNT = '000000000000'
const TYPE_PREFIX = 'com.amazonaws.dynamodb.v20120810#'

/** Sequence numbers look like DynamoDB's: a decimal string of 21+ digits, increasing. */
const seqText = (n: bigint) => n.toString().padStart(21, '0')

function parseSeq(value: unknown): bigint {
  if (typeof value !== 'string' || !/^\d{1,40}$/.test(value)) {
    throw new StreamsError('ValidationException', `Invalid SequenceNumber: ${String(value)}`)
  }
  return BigInt(value)
}

/** Canonical JSON (sorted keys) so equal images compare equal and keys route stably. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as Json)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Json)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function send(res: ServerResponse, status: number, value: Json) {
  const text = Buffer.from(JSON.stringify(value))
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': String(text.length),
    'x-amz-crc32': String(crc32(text)),
    'x-amzn-requestid': randomBytes(8).toString('hex'),
  })
  res.end(text)
}

/** One JSON 1.0 call to DynamoDB (the tap's own reads go straight to dynalite, not through the proxy). */
function dynamoCall(endpoint: string, operation: string, input: Json): Promise<{ status: number; body: Json }> {
  const url = new URL(endpoint)
  const payload = Buffer.from(JSON.stringify(input))
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `DynamoDB_20120810.${operation}`,
          'content-length': String(payload.length),
          // dynalite checks that a signature is present, not what it is.
          authorization: `AWS4-HMAC-SHA256 Credential=local/20260101/${REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
          'x-amz-date': '20260101T000000Z',
        },
      },
      (res) => {
        readBody(res)
          .then((b) => resolve({ status: res.statusCode ?? 0, body: b.length ? (JSON.parse(b.toString()) as Json) : {} }))
          .catch(reject)
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

/** Serialises writes per item, so the images read around one write are exactly its before and after. */
function createKeyLocks() {
  const tails = new Map<string, Promise<void>>()
  return async function lock(names: string[]): Promise<() => void> {
    const sorted = [...new Set(names)].sort()
    const releases: Array<() => void> = []
    for (const name of sorted) {
      const previous = tails.get(name) ?? Promise.resolve()
      let release!: () => void
      const mine = new Promise<void>((r) => (release = r))
      const tail = previous.then(() => mine)
      tails.set(name, tail)
      await previous
      releases.push(() => {
        release()
        if (tails.get(name) === tail) tails.delete(name)
      })
    }
    return () => {
      for (const r of releases) r()
    }
  }
}

export async function startStreamsEmulator(options: { now?: () => number } = {}): Promise<StreamsEmulator> {
  let offset = 0
  const clock = options.now ?? Date.now
  const now = () => clock() + offset
  const streams = new Map<string, Stream>()
  const byTable = new Map<string, Stream>()
  const counts = new Map<string, number>()
  const reads: Array<{ shard: string; records: number; ended: boolean }> = []
  const sockets = new Set<Socket>()
  let nextSeq = 100_000_000_000_000_000_000n
  let shardCounter = 0

  const newShard = (parent?: string): Shard => {
    shardCounter += 1
    const id = `shardId-${String(now()).padStart(20, '0')}-${shardCounter.toString(16).padStart(8, '0')}`
    return { id, ...(parent ? { parent } : {}), start: nextSeq, records: [], trimmedBelow: nextSeq }
  }

  const requireStream = (table: string) => {
    const stream = byTable.get(table)
    if (!stream) throw new Error(`no stream on table ${table}`)
    return stream
  }

  const close = (shard: Shard) => {
    // An empty closed shard's range ends just before it started, as in DynamoDB.
    shard.end = shard.records.length > 0 ? shard.records[shard.records.length - 1]!.seq : shard.start - 1n
  }

  function enableStream(table: string, viewType: ViewType, keySchema: Stream['keySchema']): string {
    const existing = byTable.get(table)
    if (existing && existing.status === 'ENABLED') return existing.arn
    const label = new Date(now()).toISOString().replace('Z', '')
    const arn = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${table}/stream/${label}`
    const stream: Stream = { arn, label, table, viewType, keySchema, createdAt: now(), status: 'ENABLED', shards: [newShard()], paused: false }
    streams.set(arn, stream)
    byTable.set(table, stream)
    return arn
  }

  function record(table: string, change: { keys: Image; oldImage: Image | null; newImage: Image | null }) {
    const stream = byTable.get(table)
    if (stream?.status !== 'ENABLED') return
    const { oldImage, newImage } = change
    if (!oldImage && !newImage) return
    if (oldImage && newImage && canonical(oldImage) === canonical(newImage)) return
    const eventName = !oldImage ? 'INSERT' : !newImage ? 'REMOVE' : 'MODIFY'
    const open = stream.shards.filter((s) => s.end === undefined)
    const hash = createHash('sha1').update(canonical(change.keys)).digest().readUInt32BE(0)
    const shard = open[hash % open.length]!
    const seq = nextSeq
    nextSeq += 1n
    shard.records.push({
      seq,
      eventName,
      keys: change.keys,
      ...(oldImage ? { oldImage } : {}),
      ...(newImage ? { newImage } : {}),
      at: now(),
    })
  }

  function describeShard(s: Shard): Json {
    return {
      ShardId: s.id,
      ...(s.parent ? { ParentShardId: s.parent } : {}),
      SequenceNumberRange: { StartingSequenceNumber: seqText(s.start), ...(s.end !== undefined ? { EndingSequenceNumber: seqText(s.end) } : {}) },
    }
  }

  function viewOf(stream: Stream, r: StoredRecord): Json {
    const v = stream.viewType
    const withNew = v === 'NEW_IMAGE' || v === 'NEW_AND_OLD_IMAGES'
    const withOld = v === 'OLD_IMAGE' || v === 'NEW_AND_OLD_IMAGES'
    const dynamodb: Json = {
      ApproximateCreationDateTime: Math.floor(r.at / 1000),
      Keys: r.keys,
      ...(withNew && r.newImage ? { NewImage: r.newImage } : {}),
      ...(withOld && r.oldImage ? { OldImage: r.oldImage } : {}),
      SequenceNumber: seqText(r.seq),
      StreamViewType: v,
    }
    dynamodb.SizeBytes = Buffer.byteLength(JSON.stringify([dynamodb.Keys, dynamodb.NewImage, dynamodb.OldImage]))
    return {
      eventID: createHash('md5').update(`${stream.arn}:${r.seq}`).digest('hex'),
      eventName: r.eventName,
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: REGION,
      dynamodb,
    }
  }

  interface IteratorState {
    arn: string
    shard: string
    /** The next sequence number position to read (records with seq >= pos). */
    pos: string
    issued: number
  }

  const encodeIterator = (state: IteratorState) => `${state.arn}|${Buffer.from(JSON.stringify(state)).toString('base64url')}`

  function decodeIterator(text: unknown): IteratorState {
    if (typeof text !== 'string' || text.length < 1 || text.length > 2048) {
      throw new StreamsError('ValidationException', 'ShardIterator must be a string of 1 to 2048 characters')
    }
    try {
      const state = JSON.parse(Buffer.from(text.slice(text.lastIndexOf('|') + 1), 'base64url').toString()) as IteratorState
      if (typeof state.arn !== 'string' || typeof state.pos !== 'string') throw new Error('shape')
      return state
    } catch {
      throw new StreamsError('ValidationException', 'Invalid ShardIterator')
    }
  }

  const findStream = (arn: unknown): Stream => {
    if (typeof arn !== 'string' || arn.length < 37) throw new StreamsError('ValidationException', 'StreamArn must be a stream ARN')
    const stream = streams.get(arn)
    if (!stream) throw new StreamsError('ResourceNotFoundException', `Requested resource not found: Stream: ${arn} not found`)
    return stream
  }
  const findShard = (stream: Stream, id: unknown): Shard => {
    const shard = stream.shards.find((s) => s.id === id)
    if (!shard) throw new StreamsError('ResourceNotFoundException', `Requested resource not found: Shard does not exist`)
    return shard
  }

  const ops: Record<string, (input: Json) => Json> = {
    ListStreams(input) {
      const limit = Number(input.Limit ?? 100)
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new StreamsError('ValidationException', 'Limit must be between 1 and 100')
      let list = [...streams.values()].filter((s) => input.TableName === undefined || s.table === input.TableName)
      if (input.ExclusiveStartStreamArn !== undefined) {
        const at = list.findIndex((s) => s.arn === input.ExclusiveStartStreamArn)
        list = at < 0 ? [] : list.slice(at + 1)
      }
      const page = list.slice(0, limit)
      return {
        Streams: page.map((s) => ({ StreamArn: s.arn, TableName: s.table, StreamLabel: s.label })),
        ...(list.length > limit ? { LastEvaluatedStreamArn: page[page.length - 1]!.arn } : {}),
      }
    },
    DescribeStream(input) {
      const stream = findStream(input.StreamArn)
      const limit = Number(input.Limit ?? 100)
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new StreamsError('ValidationException', 'Limit must be between 1 and 100')
      let shards = stream.shards
      if (input.ExclusiveStartShardId !== undefined) {
        const at = shards.findIndex((s) => s.id === input.ExclusiveStartShardId)
        shards = at < 0 ? [] : shards.slice(at + 1)
      }
      const page = shards.slice(0, limit)
      return {
        StreamDescription: {
          StreamArn: stream.arn,
          StreamLabel: stream.label,
          StreamStatus: stream.status,
          StreamViewType: stream.viewType,
          CreationRequestDateTime: stream.createdAt / 1000,
          TableName: stream.table,
          KeySchema: stream.keySchema,
          Shards: page.map(describeShard),
          ...(shards.length > limit ? { LastEvaluatedShardId: page[page.length - 1]!.id } : {}),
        },
      }
    },
    GetShardIterator(input) {
      const stream = findStream(input.StreamArn)
      const shard = findShard(stream, input.ShardId)
      const type = input.ShardIteratorType
      let pos: bigint
      if (type === 'TRIM_HORIZON') pos = shard.trimmedBelow
      else if (type === 'LATEST') pos = shard.end !== undefined ? shard.end + 1n : nextSeq
      else if (type === 'AT_SEQUENCE_NUMBER' || type === 'AFTER_SEQUENCE_NUMBER') {
        const seq = parseSeq(input.SequenceNumber)
        const last = shard.end ?? nextSeq - 1n
        if (seq < shard.start || seq > last) {
          throw new StreamsError('ValidationException', `Invalid SequenceNumber ${input.SequenceNumber} for shard ${shard.id}`)
        }
        pos = type === 'AT_SEQUENCE_NUMBER' ? seq : seq + 1n
        if (pos < shard.trimmedBelow) {
          throw new StreamsError('TrimmedDataAccessException', 'The operation attempted to read past the oldest stream record in a shard.')
        }
      } else {
        throw new StreamsError('ValidationException', `Invalid ShardIteratorType: ${String(type)}`)
      }
      return { ShardIterator: encodeIterator({ arn: stream.arn, shard: shard.id, pos: pos.toString(), issued: now() }) }
    },
    GetRecords(input) {
      const state = decodeIterator(input.ShardIterator)
      const limit = Number(input.Limit ?? 1000)
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new StreamsError('ValidationException', 'Limit must be between 1 and 1000')
      if (now() - state.issued > ITERATOR_TTL_MS) {
        throw new StreamsError('ExpiredIteratorException', 'Iterator expired. The iterator was created over 15 minutes ago.')
      }
      const stream = findStream(state.arn)
      const shard = stream.shards.find((s) => s.id === state.shard)
      const pos = BigInt(state.pos)
      if (!shard || pos < shard.trimmedBelow) {
        throw new StreamsError('TrimmedDataAccessException', 'The operation attempted to read past the oldest stream record in a shard.')
      }
      const ready = stream.paused ? [] : shard.records.filter((r) => r.seq >= pos)
      const page = ready.slice(0, limit)
      const nextPos = page.length > 0 ? page[page.length - 1]!.seq + 1n : pos
      const drained = shard.end !== undefined && !stream.paused && nextPos > shard.end
      reads.push({ shard: shard.id, records: page.length, ended: drained })
      return {
        Records: page.map((r) => viewOf(stream, r)),
        ...(drained ? {} : { NextShardIterator: encodeIterator({ ...state, pos: nextPos.toString(), issued: now() }) }),
      }
    },
  }

  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req)
    const target = String(req.headers['x-amz-target'] ?? '')
    const [service, operation = ''] = target.split('.')
    counts.set(operation, (counts.get(operation) ?? 0) + 1)
    try {
      if (service !== 'DynamoDBStreams_20120810' || !Object.hasOwn(ops, operation)) {
        throw new StreamsError('UnknownOperationException', `Unknown operation ${target}`)
      }
      let input: Json
      try {
        input = JSON.parse(body.toString() || '{}') as Json
      } catch {
        throw new StreamsError('SerializationException', 'Body is not JSON')
      }
      send(res, 200, ops[operation]!(input))
    } catch (err) {
      if (err instanceof StreamsError) {
        counts.set(`!${err.type}`, (counts.get(`!${err.type}`) ?? 0) + 1)
        send(res, err.status, { __type: `${TYPE_PREFIX}${err.type}`, message: err.message })
      } else send(res, 500, { __type: `${TYPE_PREFIX}InternalServerError`, message: (err as Error).message })
    }
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  // As dynalite (src/local/services/dynalite.ts): the SDK reuses idle sockets with no timeout of its own,
  // so a server that closes them after Node's 5 s makes a rare "socket hang up".
  server.keepAliveTimeout = 10 * 60 * 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  function writeTap(dynamoEndpoint: string): WriteTap {
    const locks = createKeyLocks()
    const schemas = new Map<string, string[]>()
    const keyNames = async (table: string): Promise<string[] | undefined> => {
      const known = schemas.get(table)
      if (known) return known
      const { status, body } = await dynamoCall(dynamoEndpoint, 'DescribeTable', { TableName: table })
      if (status !== 200) return undefined
      const names = ((body.Table as Json).KeySchema as Array<{ AttributeName: string }>).map((k) => k.AttributeName)
      schemas.set(table, names)
      return names
    }
    const getItem = async (table: string, key: Image): Promise<Image | null> => {
      const { status, body } = await dynamoCall(dynamoEndpoint, 'GetItem', { TableName: table, Key: key, ConsistentRead: true })
      if (status !== 200) throw new Error(`GetItem for the stream image answered ${status}`)
      return (body.Item as Image | undefined) ?? null
    }
    const keyOf = (names: string[], item: Image): Image => Object.fromEntries(names.map((n) => [n, item[n]]))

    return {
      async before(operation, input) {
        if (operation === 'CreateTable' || operation === 'UpdateTable') {
          const spec = input.StreamSpecification as { StreamEnabled?: boolean; StreamViewType?: ViewType } | undefined
          if (!spec) return undefined
          const table = String(input.TableName)
          return async (status, output) => {
            if (status !== 200) return
            if (spec.StreamEnabled === false) return disableStream(table)
            const desc = (output.TableDescription ?? {}) as Json
            const keySchema = (desc.KeySchema ?? input.KeySchema) as Stream['keySchema']
            if (spec.StreamViewType) enableStream(table, spec.StreamViewType, keySchema)
          }
        }
        // Which items the write touches: [table, key] pairs.
        const touched: Array<{ table: string; key: Image }> = []
        const add = async (table: string, keyOrItem: Image, isItem: boolean) => {
          if (!byTable.has(table)) return
          const names = await keyNames(table)
          if (names) touched.push({ table, key: isItem ? keyOf(names, keyOrItem) : keyOrItem })
        }
        if (operation === 'PutItem') await add(String(input.TableName), input.Item as Image, true)
        else if (operation === 'UpdateItem' || operation === 'DeleteItem') await add(String(input.TableName), input.Key as Image, false)
        else if (operation === 'BatchWriteItem') {
          for (const [table, list] of Object.entries((input.RequestItems ?? {}) as Record<string, Json[]>)) {
            for (const r of list) {
              const w = r as { PutRequest?: { Item: Image }; DeleteRequest?: { Key: Image } }
              if (w.PutRequest) await add(table, w.PutRequest.Item, true)
              else if (w.DeleteRequest) await add(table, w.DeleteRequest.Key, false)
            }
          }
        } else if (operation === 'TransactWriteItems') {
          for (const t of (input.TransactItems ?? []) as Json[]) {
            const w = t as { Put?: Json; Update?: Json; Delete?: Json }
            if (w.Put) await add(String(w.Put.TableName), w.Put.Item as Image, true)
            else if (w.Update) await add(String(w.Update.TableName), w.Update.Key as Image, false)
            else if (w.Delete) await add(String(w.Delete.TableName), w.Delete.Key as Image, false)
          }
        } else return undefined
        if (touched.length === 0) return undefined
        const release = await locks(touched.map((x) => `${x.table}\u0000${canonical(x.key)}`))
        try {
          const olds = await Promise.all(touched.map((x) => getItem(x.table, x.key)))
          let settled = false
          return async (status) => {
            // The proxy may report a connection error after the answer: record once.
            if (settled) return
            settled = true
            try {
              // Unprocessed batch requests and failed calls leave their items as they were: no record then.
              if (status !== 200) return
              for (const [i, x] of touched.entries()) {
                const newImage = await getItem(x.table, x.key)
                record(x.table, { keys: x.key, oldImage: olds[i]!, newImage })
              }
            } finally {
              release()
            }
          }
        } catch (err) {
          release()
          throw err
        }
      },
    }
  }

  function disableStream(table: string) {
    const stream = byTable.get(table)
    if (!stream) return
    stream.status = 'DISABLED'
    for (const s of stream.shards) if (s.end === undefined) close(s)
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    enableStream,
    disableStream,
    streamArn: (table) => byTable.get(table)?.arn,
    record,
    rollover(table) {
      const stream = requireStream(table)
      const open = stream.shards.filter((s) => s.end === undefined)
      const children = open.map((s) => {
        close(s)
        return newShard(s.id)
      })
      stream.shards.push(...children)
      return children.map((c) => c.id)
    },
    split(table, shardId) {
      const stream = requireStream(table)
      const parent = stream.shards.find((s) => s.end === undefined && (shardId === undefined || s.id === shardId))
      if (!parent) throw new Error(`no open shard ${shardId ?? ''} on ${table}`)
      close(parent)
      const a = newShard(parent.id)
      const b = newShard(parent.id)
      stream.shards.push(a, b)
      return [a.id, b.id]
    },
    trim(table) {
      const stream = requireStream(table)
      for (const s of stream.shards) {
        if (s.records.length > 0) s.trimmedBelow = s.records[s.records.length - 1]!.seq + 1n
        s.records = []
      }
      // A closed shard with nothing left is gone, as DynamoDB drops shards once their records age out.
      stream.shards = stream.shards.filter((s) => s.end === undefined)
    },
    pause(table, paused) {
      requireStream(table).paused = paused
    },
    advance(ms) {
      offset += ms
    },
    writeTap,
    reads,
    count: (operation) => (operation ? (counts.get(operation) ?? 0) : [...counts].filter(([k]) => !k.startsWith('!')).reduce((a, [, n]) => a + n, 0)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
