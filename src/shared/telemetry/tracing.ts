import { type Attributes, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import type { Telemetry } from 'bullmq'
import { BullMQOtel } from 'bullmq-otel'

/**
 * OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set. Off, nothing is loaded into
 * the request path: `inSpan` calls its function straight away and queues get no telemetry, so the hit
 * path pays one boolean check. On, each process registers the global tracer provider once (OTel's API
 * is global by design: instrumentations find it there) and exports spans over OTLP/HTTP in batches.
 *
 * Spans: each HTTP request (@fastify/otel), each cache lookup with its outcome, each DynamoDB call,
 * each Redis script, and each job, with the context carried through BullMQ (bullmq-otel) from the
 * request that queued it to the worker that ran it and on to the jobs that worker queued.
 */
export interface Tracing {
  readonly enabled: boolean
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>
}

const TRACER = 'dynacache'
let provider: NodeTracerProvider | undefined

export const tracingEnabled = () => provider !== undefined

/** Starts exporting spans to `endpoint` (the OTLP/HTTP base URL, `/v1/traces` is added) as `serviceName`. */
export function startTracing(endpoint: string | undefined, serviceName: string): Tracing {
  if (!endpoint) return { enabled: false, shutdown: async () => {} }
  if (provider) throw new Error('tracing is already started in this process')
  const started = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` }), { scheduledDelayMillis: 500 })],
  })
  // Registers the AsyncLocalStorage context manager and the W3C trace-context propagator too.
  started.register()
  provider = started
  return {
    enabled: true,
    async shutdown() {
      await started.shutdown().catch(() => {})
      trace.disable()
      provider = undefined
    },
  }
}

/**
 * Runs `fn` inside a span named `name` when tracing is on (the span ends when `fn` settles, with an
 * error status if it throws); calls `fn` with no span at all when it is off.
 */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span?: Span) => Promise<T>): Promise<T> {
  if (!provider) return fn()
  return trace.getTracer(TRACER).startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      span.recordException(err as Error)
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).name })
      throw err
    } finally {
      span.end()
    }
  })
}

/** BullMQ's telemetry option for queues, flows and workers: context travels in the job's options. */
export function queueTelemetry(): { telemetry?: Telemetry } {
  return provider ? { telemetry: new BullMQOtel({ tracerName: TRACER }) as unknown as Telemetry } : {}
}
