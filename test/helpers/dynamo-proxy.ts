import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { crc32 } from 'node:zlib'

/** What the proxy does to a call; rates are 0..1 and apply per call. */
export interface FaultPlan {
  /** Answer 500 InternalServerError. */
  fail500?: number
  /** Answer 400 ThrottlingException. */
  throttle?: number
  /** Destroy the connection without answering. */
  drop?: number
  /** Added latency in ms. */
  latencyMs?: number
  /**
   * Share of each BatchWriteItem's requests (each BatchGetItem's keys) left unprocessed, chosen at random:
   * stripped from what reaches DynamoDB and handed back in UnprocessedItems (UnprocessedKeys), as DynamoDB
   * does, so an unprocessed request is never written. Below 1 at least one request per call goes through.
   */
  unprocessed?: number
}

/**
 * Optional observer of calls the proxy forwards (the Streams emulator's feed): `before` runs before the call
 * goes to DynamoDB and may return a function the proxy awaits with DynamoDB's answer (status 0: no answer)
 * before it answers the caller, so an observer can read an item's image before and after its write.
 */
export interface WriteTap {
  before(operation: string, input: Json): Promise<((status: number, output: Json) => Promise<void>) | undefined>
}

export interface CallRecord {
  operation: string
  /** ms since epoch the call reached the proxy */
  at: number
  table: string | undefined
  /** What happened: forwarded, which fault, or 'unprocessed' when every request was handed back unsent. */
  result: 'forwarded' | 'fail500' | 'throttle' | 'drop' | 'unprocessed'
  /** Forwarded BatchWriteItem / BatchGetItem: the put items, delete keys or get keys that reached DynamoDB. */
  requests?: Array<Record<string, unknown>>
  /** How many requests (keys) of the call the proxy handed back unprocessed. */
  unprocessed?: number
  /** The item key of a single-item call (GetItem, UpdateItem, DeleteItem). */
  key?: Record<string, unknown>
}

/**
 * An HTTP proxy in front of dynalite that counts every DynamoDB call by operation and table and can
 * inject faults at set rates, switchable during a test (dynalite itself cannot fail on purpose).
 */
export interface DynamoProxy {
  readonly endpoint: string
  readonly calls: CallRecord[]
  /**
   * Calls of an operation (and table) that arrived, whatever then happens to them: counted as a call comes in,
   * before any injected latency or fault, so a test can wait until its requests are in flight.
   */
  arrived(operation?: string, table?: string): number
  /** Forwarded calls of one operation (and table), i.e. the calls that reached DynamoDB. */
  count(operation?: string, table?: string): number
  /** The put items / delete keys (get keys) of forwarded batch calls of an operation and table, in order. */
  requests(operation: 'BatchWriteItem' | 'BatchGetItem', table?: string): Array<Record<string, unknown>>
  setFaults(plan: FaultPlan): void
  /** Forgets the calls recorded and arrived so far. */
  reset(): void
  close(): Promise<void>
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

type Json = Record<string, unknown>

const pickRandom = <T>(list: T[], n: number): Set<number> => {
  const order = list.map((_, i) => i).sort(() => Math.random() - 0.5)
  return new Set(order.slice(0, n))
}

/**
 * Splits a batch call's requests into what goes on to DynamoDB and what is handed back unprocessed.
 * Returns the request body to forward (undefined when nothing is left to send) and the hand-back.
 */
function withhold(operation: string, input: Json, rate: number) {
  const requestItems = (input.RequestItems ?? {}) as Record<string, Json | Json[]>
  const forwarded: Record<string, Json | Json[]> = {}
  const handedBack: Record<string, Json | Json[]> = {}
  const reached: Json[] = []
  let held = 0
  for (const [table, entry] of Object.entries(requestItems)) {
    const list = (operation === 'BatchWriteItem' ? entry : (entry as Json).Keys) as Json[]
    const n = rate >= 1 ? list.length : Math.min(list.length - 1, Math.round(list.length * rate))
    const out = pickRandom(list, Math.max(0, n))
    const keep = list.filter((_, i) => !out.has(i))
    const back = list.filter((_, i) => out.has(i))
    held += back.length
    for (const r of keep) {
      const write = r as { PutRequest?: { Item: Json }; DeleteRequest?: { Key: Json } }
      reached.push(operation === 'BatchWriteItem' ? (write.PutRequest?.Item ?? write.DeleteRequest!.Key) : r)
    }
    const wrap = (l: Json[]) => (operation === 'BatchWriteItem' ? l : { ...(entry as Json), Keys: l })
    if (keep.length > 0) forwarded[table] = wrap(keep)
    if (back.length > 0) handedBack[table] = wrap(back)
  }
  const body = Object.keys(forwarded).length > 0 ? { ...input, RequestItems: forwarded } : undefined
  return { body, handedBack, reached, held }
}

/** Adds the withheld requests to DynamoDB's own UnprocessedItems / UnprocessedKeys. */
function handBack(operation: string, output: Json, withheld: Record<string, Json | Json[]>): Json {
  const field = operation === 'BatchWriteItem' ? 'UnprocessedItems' : 'UnprocessedKeys'
  const merged = { ...((output[field] ?? {}) as Record<string, Json | Json[]>) }
  for (const [table, entry] of Object.entries(withheld)) {
    const have = merged[table]
    if (operation === 'BatchWriteItem') merged[table] = [...((have as Json[] | undefined) ?? []), ...(entry as Json[])]
    else merged[table] = { ...(entry as Json), Keys: [...(((have as Json | undefined)?.Keys as Json[]) ?? []), ...((entry as Json).Keys as Json[])] }
  }
  return { ...output, [field]: merged }
}

function sendJson(res: ServerResponse, status: number, headers: Record<string, unknown>, value: Json) {
  const text = Buffer.from(JSON.stringify(value))
  const { 'content-encoding': _e, 'transfer-encoding': _t, ...rest } = headers
  res.writeHead(status, { ...rest, 'content-length': String(text.length), 'x-amz-crc32': String(crc32(text)) } as Record<string, string>)
  res.end(text)
}

function dynamoError(res: ServerResponse, status: number, type: string, message: string) {
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message })
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export async function startDynamoProxy(target: string, plan: FaultPlan = {}, options: { tap?: WriteTap } = {}): Promise<DynamoProxy> {
  const upstream = new URL(target)
  let faults = plan
  const calls: CallRecord[] = []
  const arrivals: Array<{ operation: string; table: string | undefined }> = []
  const sockets = new Set<Socket>()

  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req)
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? 'unknown'
    let table: string | undefined
    let input: Json | undefined
    try {
      input = JSON.parse(body.toString()) as Json
      // Batch calls name their table in RequestItems; one table per call is what dynacache sends.
      table = (input.TableName as string | undefined) ?? Object.keys((input.RequestItems ?? {}) as Json)[0]
    } catch {}
    arrivals.push({ operation, table })
    const key = input?.Key && typeof input.Key === 'object' ? { key: input.Key as Json } : {}
    const record = (result: CallRecord['result'], extra: Partial<CallRecord> = {}) => calls.push({ operation, table, result, at: Date.now(), ...key, ...extra })
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs))
    const roll = Math.random()
    const { drop = 0, fail500 = 0, throttle = 0 } = faults
    if (roll < drop) {
      record('drop')
      req.socket.destroy()
      return
    }
    if (roll < drop + fail500) {
      record('fail500')
      return dynamoError(res, 500, 'InternalServerError', 'injected failure')
    }
    if (roll < drop + fail500 + throttle) {
      record('throttle')
      return dynamoError(res, 400, 'ThrottlingException', 'injected throttling')
    }
    const isBatch = (operation === 'BatchWriteItem' || operation === 'BatchGetItem') && input !== undefined
    const split = isBatch ? withhold(operation, input!, faults.unprocessed ?? 0) : undefined
    if (split && !split.body) {
      record('unprocessed', { unprocessed: split.held })
      return sendJson(res, 200, { 'content-type': 'application/x-amz-json-1.0' }, handBack(operation, {}, split.handedBack))
    }
    record('forwarded', split ? { requests: split.reached, unprocessed: split.held } : {})
    const payload = split ? Buffer.from(JSON.stringify(split.body)) : body
    const after = options.tap && input ? await options.tap.before(operation, split ? (split.body as Json) : input).catch(() => undefined) : undefined
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, 'content-length': String(payload.length) },
      },
      async (up) => {
        if (after) {
          const text = await readBody(up)
          const output = up.statusCode === 200 ? (JSON.parse(text.toString()) as Json) : {}
          await after(up.statusCode ?? 0, output).catch(() => {})
          if (split && split.held > 0 && up.statusCode === 200) return sendJson(res, 200, up.headers, handBack(operation, output, split.handedBack))
          const { 'content-length': _l, ...rest } = up.headers
          res.writeHead(up.statusCode ?? 502, { ...rest, 'content-length': String(text.length) })
          res.end(text)
          return
        }
        if (!split || split.held === 0 || up.statusCode !== 200) {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
          return
        }
        const output = JSON.parse((await readBody(up)).toString()) as Json
        sendJson(res, 200, up.headers, handBack(operation, output, split.handedBack))
      },
    )
    forward.on('error', () => {
      after?.(0, {}).catch(() => {})
      res.destroy()
    })
    forward.end(payload)
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

  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    arrived: (operation, table) => arrivals.filter((a) => (!operation || a.operation === operation) && (!table || a.table === table)).length,
    count: (operation, table) =>
      calls.filter((c) => c.result === 'forwarded' && (!operation || c.operation === operation) && (!table || c.table === table)).length,
    requests: (operation, table) =>
      calls.filter((c) => c.result === 'forwarded' && c.operation === operation && (!table || c.table === table)).flatMap((c) => c.requests ?? []),
    setFaults: (next) => {
      faults = next
    },
    reset: () => {
      calls.length = 0
      arrivals.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
