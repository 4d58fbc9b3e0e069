import closeWithGrace from 'close-with-grace'
import { exitOnConfigError, loadConfigOrExit } from '../shared/config.ts'
import { createLogger } from '../shared/logger.ts'
import { startTracing } from '../shared/telemetry/tracing.ts'
import { startWorkerFleet } from './fleet.ts'
import { limitHeapGrowth } from './heap-growth.ts'

limitHeapGrowth()

const config = loadConfigOrExit('worker')
const logger = createLogger(config, 'dynacache-worker')
// Before the fleet starts: its queues and workers carry trace context only when tracing is on.
const tracing = startTracing(config.OTEL_EXPORTER_OTLP_ENDPOINT, 'dynacache-worker')

// WORKER_QUEUES is checked as the fleet starts: a bad one is a configuration error too.
const fleet = await startWorkerFleet(config, logger).catch(exitOnConfigError)

closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger }, async ({ signal, err }) => {
  if (err) logger.error({ msg: 'worker.crashed', err })
  else logger.info({ msg: 'worker.stopping', signal })
  // Within SHUTDOWN_TIMEOUT_MS close-with-grace exits 1; keep a margin for a forced close and the connections.
  await fleet.close(config.SHUTDOWN_TIMEOUT_MS - Math.min(1000, Math.floor(config.SHUTDOWN_TIMEOUT_MS / 4)))
  await tracing.shutdown()
  logger.info({ msg: 'worker.stopped' })
})
