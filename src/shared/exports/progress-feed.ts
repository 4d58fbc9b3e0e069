import type { Redis } from 'ioredis'
import type { LogSink } from '../logger.ts'
import type { ExportEvent } from './model.ts'
import { compareStreamIds, type ExportStore, parseEvent } from './store.ts'

/**
 * Live export events for one process (an API replica): ONE blocking connection reads every followed
 * export's stream with a single XREAD, however many clients follow, and fans the events out.
 * All export streams share one hash tag, so that multi-key XREAD is Redis Cluster safe.
 */
export interface ProgressFeed {
  /**
   * Calls `onEvent` for each event of the export after `afterId` (every event when undefined), in
   * order and once each: first those already in the stream, then new ones as they are appended.
   * Resolves, once the stored events were delivered, with a function that stops following.
   */
  follow(exportId: string, afterId: string | undefined, onEvent: (event: ExportEvent) => void): Promise<() => void>
  close(): Promise<void>
}

export interface ProgressFeedOptions {
  store: ExportStore
  /** Opens the blocking connection (created on first use). */
  connect(): Redis
  /** How long one XREAD blocks; also the longest wait before a newly followed stream joins the read. */
  blockMs?: number
  logger?: LogSink
}

interface Listener {
  last: string
  live: boolean
  buffer: ExportEvent[]
  onEvent(event: ExportEvent): void
}

interface Watched {
  /** The id XREAD continues after for this stream. */
  lastId: string
  listeners: Set<Listener>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function createProgressFeed({ store, connect, blockMs = 1000, logger }: ProgressFeedOptions): ProgressFeed {
  const watched = new Map<string, Watched>()
  let blocking: Redis | undefined
  let loop: Promise<void> | undefined
  let wake: (() => void) | undefined
  let closed = false

  function deliver(listener: Listener, event: ExportEvent) {
    if (!listener.live) {
      listener.buffer.push(event)
      return
    }
    if (compareStreamIds(event.id, listener.last) <= 0) return
    listener.last = event.id
    listener.onEvent(event)
  }

  async function run() {
    blocking ??= connect()
    while (!closed) {
      if (watched.size === 0) {
        await new Promise<void>((resolve) => (wake = resolve))
        continue
      }
      const keys = [...watched.keys()]
      const ids = keys.map((k) => watched.get(k)!.lastId)
      let reply: Array<[string, Array<[string, string[]]>]> | null
      try {
        reply = (await blocking.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)) as typeof reply
      } catch (err) {
        if (closed) return
        logger?.warn({ msg: 'exports.feed.read-failed', err: (err as Error).message })
        await sleep(500)
        continue
      }
      for (const [key, entries] of reply ?? []) {
        const stream = watched.get(key)
        if (!stream) continue
        for (const [id, fields] of entries) {
          stream.lastId = id
          const event = parseEvent(id, fields)
          for (const listener of stream.listeners) deliver(listener, event)
        }
      }
    }
  }

  return {
    async follow(exportId, afterId, onEvent) {
      if (closed) throw new Error('progress feed closed')
      const key = store.eventsKey(exportId)
      const start = afterId ?? '0-0'
      const listener: Listener = { last: start, live: false, buffer: [], onEvent }
      let stream = watched.get(key)
      if (!stream) {
        stream = { lastId: start, listeners: new Set() }
        watched.set(key, stream)
      }
      stream.listeners.add(listener)
      const stop = () => {
        stream.listeners.delete(listener)
        if (stream.listeners.size === 0 && watched.get(key) === stream) watched.delete(key)
      }
      loop ??= run().catch((err) => logger?.error({ msg: 'exports.feed.stopped', err: (err as Error).message }))
      wake?.()
      wake = undefined
      // Registered first, read second: whatever lands in between is buffered, then deduplicated by id.
      try {
        for (const event of await store.events(exportId, afterId)) {
          if (compareStreamIds(event.id, listener.last) <= 0) continue
          listener.last = event.id
          onEvent(event)
        }
      } catch (err) {
        stop()
        throw err
      }
      listener.live = true
      const buffered = listener.buffer.sort((a, b) => compareStreamIds(a.id, b.id))
      listener.buffer = []
      for (const event of buffered) deliver(listener, event)
      return stop
    },

    async close() {
      closed = true
      wake?.()
      watched.clear()
      // Ends a blocked XREAD at once instead of waiting out its timeout.
      blocking?.disconnect()
      await loop
    },
  }
}
