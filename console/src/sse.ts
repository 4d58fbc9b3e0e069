/**
 * Server-Sent Events over fetch: EventSource cannot send an Authorization header, and the key must not
 * go in a URL. Reconnects with Last-Event-ID until a terminal event or a 204 ends the stream.
 */
export interface SseEvent {
  id: string | undefined
  event: string
  data: string
}

export interface SseOptions {
  key: string
  onEvent: (e: SseEvent) => void
  /** Events after which the stream is over. */
  terminal: ReadonlySet<string>
  signal: AbortSignal
  onError?: (err: unknown) => void
}

export async function followEvents(path: string, opts: SseOptions): Promise<void> {
  let lastId: string | undefined
  let delay = 1000
  while (!opts.signal.aborted) {
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${opts.key}` }
      if (lastId) headers['last-event-id'] = lastId
      const res = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', signal: opts.signal })
      if (res.status === 204) return
      // Refused for good (the key, the export, the Accept header): asking again would not help. 429 and 5xx are retried.
      if (res.status >= 400 && res.status < 500 && res.status !== 429) {
        opts.onError?.(new Error(`event stream answered ${res.status}`))
        return
      }
      if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`)
      delay = 1000
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      let event = { id: undefined as string | undefined, event: 'message', data: [] as string[] }
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        const lines = buffer.split(/\r\n|\r|\n/)
        buffer = lines.pop() ?? ''
        for (const line of lines) {
          if (line === '') {
            if (event.data.length > 0) {
              if (event.id !== undefined) lastId = event.id
              opts.onEvent({ id: event.id, event: event.event, data: event.data.join('\n') })
              if (opts.terminal.has(event.event)) {
                await reader.cancel().catch(() => {})
                return
              }
            }
            event = { id: undefined, event: 'message', data: [] }
            continue
          }
          if (line.startsWith(':')) continue
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'data') event.data.push(val)
          else if (field === 'event') event.event = val
          else if (field === 'id') event.id = val
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return
      opts.onError?.(err)
    }
    // The stream ended early (a replica restarted): come back and resume after the last event seen.
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 15_000)
  }
}
