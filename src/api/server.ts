import type { ServerResponse } from 'node:http'
import closeWithGrace from 'close-with-grace'
import { exitOnConfigError, loadConfigOrExit } from '../shared/config.ts'
import { startTracing } from '../shared/telemetry/tracing.ts'
import { buildApp } from './app.ts'

const config = loadConfigOrExit('api')
// Before the app is built: the request instrumentation registers only when tracing is on.
const tracing = startTracing(config.OTEL_EXPORTER_OTLP_ENDPOINT, 'dynacache-api')
// API_KEYS_FILE is read and checked as the app is built: a bad one is a configuration error too.
const app = await buildApp(config).catch(exitOnConfigError)

// Responses not finished yet. Closing the server closes the keep-alive connections idle at that moment
// only: a request in flight at SIGTERM would leave its connection open (idle, kept alive) once answered,
// and the server would wait on it until keepAliveTimeout, past SHUTDOWN_TIMEOUT_MS (exit 1).
const inFlight = new Set<ServerResponse>()
app.server.on('request', (_req, res: ServerResponse) => {
  inFlight.add(res)
  res.once('close', () => inFlight.delete(res))
})

/** Lets every request in flight finish, then closes its connection instead of keeping it alive. */
function closeConnectionsAfterAnswers() {
  for (const res of inFlight) {
    if (!res.headersSent) {
      // Answered with `Connection: close`; Node ends the socket after the response.
      res.shouldKeepAlive = false
    } else {
      // Already streaming (a download, an event stream): end the socket once the response is complete.
      const socket = res.socket
      res.once('finish', () => socket?.end())
    }
  }
}

closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger: app.log }, async ({ signal, err }) => {
  if (err) app.log.error({ msg: 'api.crashed', err })
  else app.log.info({ msg: 'api.stopping', signal, inFlight: inFlight.size })
  closeConnectionsAfterAnswers()
  await app.close()
  await tracing.shutdown()
  app.log.info({ msg: 'api.stopped' })
})

await app.listen({ port: config.PORT, host: config.HOST })
