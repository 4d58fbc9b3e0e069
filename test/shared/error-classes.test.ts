import t from 'tap'
import { isThrottling, mapDynamoError } from '../../src/shared/dynamo/errors.ts'
import { codeOf, isBudgetExhausted, isPermanent, isUnavailable } from '../../src/shared/error-classes.ts'
import { type ErrorCode, errors } from '../../src/shared/errors.ts'

const dc = (code: ErrorCode) => new errors[code]('x', 'y')
/** An AWS SDK failure as the client throws it: the exception's name says what it is. */
const sdkError = (name: string, message = 'from the driver') => Object.assign(new Error(message), { name })

t.test('codeOf reads the code of ours, of Node errors, and nothing else', async (t) => {
  t.equal(codeOf(dc('DC_ERR_TABLE_NOT_FOUND')), 'DC_ERR_TABLE_NOT_FOUND')
  t.equal(codeOf(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED')
  t.equal(codeOf(new Error('plain')), undefined)
  t.equal(codeOf({ code: 42 }), undefined, 'a code that is not a string')
  for (const value of [null, undefined, 'DC_ERR_TABLE_NOT_FOUND', 7]) t.equal(codeOf(value), undefined, String(value))
})

t.test('unavailable: DynamoDB down, throttled or over budget, so a stale entry may answer', async (t) => {
  for (const code of ['DC_ERR_DYNAMO_UNAVAILABLE', 'DC_ERR_DYNAMO_THROTTLED', 'DC_ERR_BUDGET_EXHAUSTED'] as const) {
    t.ok(isUnavailable(dc(code)), code)
  }
  for (const code of ['DC_ERR_TABLE_NOT_FOUND', 'DC_ERR_DYNAMO_REJECTED', 'DC_ERR_REDIS_UNAVAILABLE', 'DC_ERR_INTERNAL'] as const) {
    t.notOk(isUnavailable(dc(code)), code)
  }
  t.notOk(isUnavailable(new Error('ECONNRESET')), 'an unmapped driver error is not ours to judge')
  t.ok(isUnavailable(mapDynamoError(sdkError('ThrottlingException'), 'orders')), 'throttling, once mapped')
  t.ok(isUnavailable(mapDynamoError(sdkError('TimeoutError'), 'orders')), 'a timeout, once mapped')
})

t.test('budget exhausted is the one "not now" code', async (t) => {
  t.ok(isBudgetExhausted(dc('DC_ERR_BUDGET_EXHAUSTED')))
  const others = (Object.keys(errors) as ErrorCode[]).filter((code) => code !== 'DC_ERR_BUDGET_EXHAUSTED')
  t.same(
    others.filter((code) => isBudgetExhausted(dc(code))),
    [],
  )
  t.notOk(isBudgetExhausted(null))
})

t.test('permanent: what a retry with the same input cannot fix', async (t) => {
  // What export-segment, export-assemble and export-schedule each treated as permanent before they shared one rule.
  const before = [
    'DC_ERR_TABLE_NOT_FOUND',
    'DC_ERR_DYNAMO_REJECTED',
    'DC_ERR_INVALID_FILTER',
    'DC_ERR_INDEX_NOT_FOUND',
    'DC_ERR_INVALID_KEY',
    'DC_ERR_INVALID_QUERY',
    'DC_ERR_VALIDATION',
    'DC_ERR_FILTER_TOO_LARGE',
  ] as const
  for (const code of before) t.ok(isPermanent(dc(code)), `${code} is permanent`)
  for (const [code, Err] of Object.entries(errors)) {
    const err = new Err('x', 'y')
    t.equal(isPermanent(err), err.statusCode === 400 || err.statusCode === 404, `${code} (${err.statusCode})`)
    if (isPermanent(err)) t.notOk(isUnavailable(err), `${code} is not also transient`)
  }
  for (const code of [
    'DC_ERR_EXPORT_QUOTA',
    'DC_ERR_BATCH_QUOTA',
    'DC_ERR_EXPORT_STORAGE_UNAVAILABLE',
    'DC_ERR_QUEUE_UNAVAILABLE',
    'DC_ERR_INTERNAL',
  ] as const) {
    t.notOk(isPermanent(dc(code)), `${code} is retried`)
  }
  t.notOk(isPermanent(new Error('unknown')), 'an unknown failure is retried')
  t.notOk(isPermanent(Object.assign(new Error('gone'), { code: 'ENOENT', statusCode: 404 })), 'only our codes are judged')
  t.ok(isPermanent(mapDynamoError(sdkError('ValidationException'), 'orders')), "DynamoDB's ValidationException, once mapped")
  t.ok(isPermanent(mapDynamoError(sdkError('ResourceNotFoundException'), 'orders')), 'a missing table, once mapped')
})

t.test('throttling is told by the exception name, and maps to DC_ERR_DYNAMO_THROTTLED', async (t) => {
  for (const name of ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'LimitExceededException']) {
    t.ok(isThrottling(sdkError(name)), name)
    const mapped = mapDynamoError(sdkError(name), 'orders')
    t.equal(codeOf(mapped), 'DC_ERR_DYNAMO_THROTTLED', `${name} maps to throttled`)
    t.ok(mapped instanceof errors.DC_ERR_DYNAMO_THROTTLED, 'an instance of the catalogue error')
  }
  for (const name of ['InternalServerError', 'ValidationException', 'Error', 'TimeoutError']) t.notOk(isThrottling(sdkError(name)), name)
  t.notOk(isThrottling(sdkError('Foo', 'ThrottlingException')), 'the message is not the name')
  t.notOk(isThrottling(undefined))
})
