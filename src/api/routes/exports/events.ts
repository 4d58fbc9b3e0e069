import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { errors } from '../../../shared/errors.ts'
import { compareStreamIds, type ExportEvent, type ExportEventData, type ExportRecord, isStreamId, isTerminal } from '../../../shared/exports/index.ts'
import { ErrorResponse, ExportParams, exportErrors } from './schemas.ts'
import type { ExportApi } from './services.ts'

/** True unless the Accept header rules Server-Sent Events out (absent, wildcards and text/event-stream admit them). */
function acceptsEventStream(accept: string | undefined): boolean {
  if (!accept) return true
  return accept.split(',').some((part) => {
    const [type = '', ...params] = part.trim().toLowerCase().split(';')
    const refused = params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p))
    return !refused && ['text/event-stream', 'text/*', '*/*'].includes(type.trim())
  })
}

const stateOf = (record: ExportRecord): ExportEventData => ({
  status: record.status,
  progress: record.progress,
  processedItems: record.processedItems,
  ...(record.error ? { error: record.error } : {}),
  ...(record.bytes !== undefined ? { bytes: record.bytes } : {}),
})

/**
 * GET /exports/:id/events: the export's progress as Server-Sent Events (progress, then completed,
 * failed or cancelled), read from the export's Redis stream so any API replica can serve it. Without
 * Last-Event-ID the current state comes first (with the id of the latest event); with one, exactly
 * the events after it. A keep-alive comment every SSE_KEEPALIVE_MS; the stream ends after the
 * terminal event, and a client that already has it gets 204, which tells EventSource to stop.
 */
export default async function eventsRoute(fastify: FastifyInstance, { api }: { api: ExportApi }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { store, feed } = api

  app.get(
    '/exports/:id/events',
    {
      config: { scope: 'export' },
      // 'manual': the handler negotiates itself, so a refusal is our 406 with an error code.
      sse: 'manual',
      schema: {
        tags: ['exports'],
        summary: 'Live progress as Server-Sent Events; Last-Event-ID replays what a client missed',
        description:
          'text/event-stream. Events: progress, completed, failed, cancelled; data is JSON ' +
          '{ exportId, status, progress, processedItems, error?, bytes?, download? }. Ends after the terminal event. ' +
          'An API key may have KEY_STREAMS_MAX streams open at once (fleet-wide); past that, 429 DC_ERR_STREAM_QUOTA.',
        params: ExportParams,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 64 })) }),
        response: {
          200: {
            description: 'The event stream: `id`, `event` and a JSON `data` line per event, keep-alive comments between',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          204: Type.Null({ description: 'the client already has the terminal event' }),
          406: ErrorResponse,
          // DC_ERR_STREAM_QUOTA: the key has KEY_STREAMS_MAX streams open (plugins/limits.ts).
          429: ErrorResponse,
          ...exportErrors,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      if (!acceptsEventStream(request.headers.accept)) throw new errors.DC_ERR_NOT_ACCEPTABLE('This route answers text/event-stream only')
      const { record, lastEventId: latest } = await store.snapshot(id)
      if (!record || !api.visible(request.principal, record)) throw new errors.DC_ERR_EXPORT_NOT_FOUND(id)
      const presented = request.headers['last-event-id']
      // Only an id this stream could have issued resumes; anything else gets the current state.
      const resumeAfter =
        typeof presented === 'string' && isStreamId(presented) && latest !== undefined && compareStreamIds(presented, latest) <= 0 ? presented : undefined
      if (resumeAfter === latest && isTerminal(record.status)) return reply.code(204).send(null)

      const sse = reply.sse
      sse.keepAlive()
      // Committed now, so Fastify does not answer for us when the handler returns before any event.
      sse.sendHeaders()
      app.metrics.sseConnections.inc()
      let stop: (() => void) | undefined
      let ended = false
      let chain = Promise.resolve()
      const end = () => {
        if (ended) return
        ended = true
        app.metrics.sseConnections.dec()
        stop?.()
        api.streams.delete(end)
        sse.close()
        // A client that went away uncleanly leaves the response open: free its socket, or closing the server waits on it.
        if (!reply.raw.writableEnded) reply.raw.destroy()
      }
      api.streams.add(end)
      sse.onClose(end)

      const send = (eventId: string | undefined, type: string, data: ExportEventData) => {
        const payload = { exportId: id, ...data, ...(type === 'completed' ? { download: api.signedDownload(record) } : {}) }
        chain = chain
          .then(() => (sse.isConnected ? sse.send({ ...(eventId ? { id: eventId } : {}), event: type, data: payload }) : undefined))
          .catch(() => end())
        if (type !== 'progress') chain = chain.then(end)
      }

      if (resumeAfter === undefined) {
        send(latest, isTerminal(record.status) ? record.status : 'progress', stateOf(record))
        if (isTerminal(record.status)) return chain
      }
      try {
        stop = await feed.follow(id, resumeAfter ?? latest, (event: ExportEvent) => {
          if (!ended) send(event.id, event.type, event.data)
        })
      } catch (err) {
        end()
        throw err
      }
      if (ended) stop()
      return chain
    },
  )
}
