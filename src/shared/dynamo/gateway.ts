import { setMaxListeners } from 'node:events'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel'
import { errors } from '../errors.ts'
import type { LogSink } from '../logger.ts'
import { inSpan } from '../telemetry/tracing.ts'
import { type Admission, type CapacityBudget, estimateReadUnits } from './capacity-budget.ts'
import { isThrottling, mapDynamoError } from './errors.ts'

/** User requests may use the whole read budget; background work only what users leave. */
export type CallPriority = 'user' | 'background'

export type BreakerState = 'closed' | 'open' | 'half-open'

/** Every DynamoDB call dynacache makes goes through here: budget, timeout, retries, breaker, errors mapped, slow calls logged. */
export interface DynamoGateway {
  send<Output>(table: string | null, command: { input: object; constructor: { name: string } }): Promise<Output>
  breakerState(): BreakerState
}

export interface CallObservation {
  operation: string
  table: string | null
  ms: number
  error?: string
}

export interface ResilienceOptions {
  timeoutMs: number
  breakerFailures: number
  breakerRecoveryMs: number
  /** Attempts per call for throttling and 5xx (1 = no retry); single-item writes retry only failures that surely wrote nothing. */
  attempts: number
}

export interface GatewayOptions {
  client: DynamoDBClient
  /** The priority of this process's calls: 'user' for the API, 'background' for workers. */
  priority: CallPriority
  slowCallMs: number
  resilience: ResilienceOptions
  budget?: CapacityBudget
  /** DYNAMO_WRITE_BUDGET, charged by BatchWriteItem calls (a unit per item at least). */
  writeBudget?: CapacityBudget
  logger?: LogSink
  /** Called after every call (metrics, tests). */
  observe?(call: CallObservation): void
}

const READ_OPERATIONS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem'])
/** Writes charged to the write budget: batches by their items, single-item writes (the API's) a unit each at least. */
const WRITE_OPERATIONS = new Set(['BatchWriteItem', 'PutItem', 'UpdateItem', 'DeleteItem'])

type ConsumedCapacity = { CapacityUnits?: number }
/** What a call reported as consumed: one entry for reads, one per table for BatchWriteItem. */
function consumedUnits(output: { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }): number | undefined {
  const consumed = output.ConsumedCapacity
  if (consumed === undefined) return undefined
  return (Array.isArray(consumed) ? consumed : [consumed]).reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0)
}

/** The write requests of a BatchWriteItem call on `table`, and how many came back unprocessed. */
function writeRequests(input: object, table: string, output?: object): { sent: number; left: number } {
  const sent = (input as { RequestItems?: Record<string, unknown[]> }).RequestItems?.[table]?.length ?? 0
  const left = (output as { UnprocessedItems?: Record<string, unknown[]> } | undefined)?.UnprocessedItems?.[table]?.length ?? 0
  return { sent, left }
}
const TRANSIENT = /^(InternalServerError|ServiceUnavailable|TimeoutError|RequestTimeout|TaskCancelledError)$/
const isTransient = (err: Error) =>
  isThrottling(err) ||
  TRANSIENT.test(err.name) ||
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 500 ||
  /ECONNRESET|ECONNREFUSED|socket hang up|EPIPE/.test(err.message) ||
  err.name === 'Error'
/** Failures after which a write surely did not happen: DynamoDB refused it before applying (throttling), or it never reached DynamoDB. */
const isUnapplied = (err: Error) => isThrottling(err) || /ECONNREFUSED/.test(err.message)
/**
 * After a timeout, a reset or a 5xx a single-item write may have been applied: sent again, an ADD would
 * count twice, and a put's or delete's ReturnValues would describe our own first attempt (wrong images).
 */
const SINGLE_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem'])
/** Failures that say the endpoint is unhealthy (not merely busy): these trip the breaker. */
const isOutage = (err: Error) => isTransient(err) && !isThrottling(err)

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
}

export function createDynamoGateway(options: GatewayOptions): DynamoGateway {
  const { client, priority, slowCallMs, resilience, budget, writeBudget, logger, observe } = options
  // The breaker wraps the retries, so one call that fails after every attempt counts once.
  const breaker = circuitBreaker(handleWhen(isOutage), {
    halfOpenAfter: resilience.breakerRecoveryMs,
    breaker: new ConsecutiveBreaker(resilience.breakerFailures),
  })
  breaker.onBreak(() => logger?.warn({ msg: 'dynamo.breaker.open', recoveryMs: resilience.breakerRecoveryMs }))
  breaker.onHalfOpen(() => logger?.info({ msg: 'dynamo.breaker.half-open' }))
  breaker.onReset(() => logger?.info({ msg: 'dynamo.breaker.closed' }))
  const retryWhen = (failed: (err: Error) => boolean) =>
    retry(handleWhen(failed), {
      maxAttempts: Math.max(0, resilience.attempts - 1),
      // Users wait for this call, so their backoff starts small; jittered either way.
      backoff: new ExponentialBackoff({ initialDelay: priority === 'user' ? 25 : 100, maxDelay: priority === 'user' ? 400 : 5000 }),
    })
  const perAttempt = timeout(resilience.timeoutMs, TimeoutStrategy.Aggressive)
  const policy = wrap(breaker, retryWhen(isTransient), perAttempt)
  const singleWritePolicy = wrap(breaker, retryWhen(isUnapplied), perAttempt)
  // cockatiel links every execution's signal to a parent; its default parent is one signal shared by
  // the whole process, which warns of a leak at 11 concurrent calls. Ours allows any number.
  const parent = new AbortController().signal
  setMaxListeners(0, parent)

  return {
    breakerState: () => STATE_NAMES[breaker.state],
    send<Output>(table: string | null, command: { input: object; constructor: { name: string } }) {
      const operation = command.constructor.name.replace(/Command$/, '')
      const attributes = { 'db.system': 'dynamodb', 'db.operation': operation, ...(table ? { 'aws.dynamodb.table_names': [table] } : {}) }
      return inSpan(`dynamodb.${operation}`, attributes, () => call<Output>(table, operation, command))
    },
  }

  async function call<Output>(table: string | null, operation: string, command: { input: object; constructor: { name: string } }): Promise<Output> {
    // Reads spend the read budget; BatchWriteItem the write budget, a unit per item at least, all
    // reserved at admission so parallel calls see each other at once.
    const isWrite = WRITE_OPERATIONS.has(operation)
    const spent = table === null ? undefined : READ_OPERATIONS.has(operation) ? budget : isWrite ? writeBudget : undefined
    let admission: Admission | undefined
    if (spent?.enabled) {
      admission = await spent.admit(table!, priority, isWrite ? Math.max(1, writeRequests(command.input, table!).sent) : undefined)
      ;(command.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = 'TOTAL'
    }
    const started = performance.now()
    try {
      const output = await (SINGLE_WRITES.has(operation) ? singleWritePolicy : policy).execute(
        ({ signal }) => client.send(command as never, { abortSignal: signal }) as Promise<Output>,
        parent,
      )
      const ms = performance.now() - started
      if (ms > slowCallMs) logger?.warn({ msg: 'dynamo.slow', operation, table, ms: Math.round(ms) })
      observe?.({ operation, table, ms })
      if (spent?.enabled) {
        const estimate = () => {
          if (!isWrite) return estimateReadUnits(output as never)
          if (operation !== 'BatchWriteItem') return 1
          const { sent, left } = writeRequests(command.input, table!, output as object)
          return sent - left
        }
        spent.settle(admission, consumedUnits(output as never) ?? estimate())
      }
      return output
    } catch (err) {
      const ms = performance.now() - started
      // A failed call (throttled, timed out, refused) consumed nothing we know of: give the reservation back.
      spent?.settle(admission, 0)
      observe?.({ operation, table, ms, error: (err as Error).name })
      if (err instanceof BrokenCircuitError) {
        throw new errors.DC_ERR_DYNAMO_UNAVAILABLE('circuit breaker open', { cause: err })
      }
      if (err instanceof TaskCancelledError) {
        throw new errors.DC_ERR_DYNAMO_UNAVAILABLE(`no answer within ${resilience.timeoutMs} ms`, { cause: err })
      }
      throw mapDynamoError(err, table)
    }
  }
}

/** Resilience settings from config, for the API (users wait: fewer attempts) or workers. */
export function resilienceFrom(
  config: { DYNAMO_TIMEOUT_MS: number; BREAKER_FAILURES: number; BREAKER_RECOVERY_MS: number },
  priority: CallPriority,
): ResilienceOptions {
  return {
    timeoutMs: config.DYNAMO_TIMEOUT_MS,
    breakerFailures: config.BREAKER_FAILURES,
    breakerRecoveryMs: config.BREAKER_RECOVERY_MS,
    attempts: priority === 'user' ? 2 : 4,
  }
}
