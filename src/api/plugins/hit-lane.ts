import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { tracingEnabled } from '../../shared/telemetry/tracing.ts'
import { createHitLane, type HitLane } from '../hit-lane.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The hit lane (src/api/hit-lane.ts), or null where it is off: with tracing on. */
    hitLane: HitLane | null
  }
}

export interface HitLanePluginOptions {
  /** The app's request-id generator, shared so the lane's ids continue Fastify's sequence. */
  requestId(): string
}

/**
 * Creates the hit lane once the cache, the rate-limit budget and the metrics exist. It is off with
 * tracing on (a request answered in the lane would have no span); it stops answering when the app
 * starts closing.
 */
async function hitLanePlugin(app: FastifyInstance, opts: HitLanePluginOptions) {
  if (tracingEnabled()) {
    app.decorate('hitLane', null)
    return
  }
  const lane = createHitLane({
    cache: app.cache,
    budget: app.keyBudget,
    metrics: app.metrics,
    log: app.log,
    requestId: opts.requestId,
    config: app.config,
  })
  app.decorate('hitLane', lane)
  app.addHook('preClose', (done) => {
    lane.close()
    done()
  })
}

export default fp(hitLanePlugin, { name: 'hit-lane', dependencies: ['cache', 'rate-limit', 'metrics'] })
