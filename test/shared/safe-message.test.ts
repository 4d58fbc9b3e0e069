import t from 'tap'
import { mapDynamoError } from '../../src/shared/dynamo/errors.ts'
import { safeReason, safeText } from '../../src/shared/safe-message.ts'

/** Fragments of driver text that must never reach a client or a stored record. */
const LEAKS = [/ECONNREFUSED/, /127\.0\.0\.1/, /10\.1\.2\.3/, /123456789012/, /arn:aws/, /\/var\/lib/, /dynamodb\.internal/, /secret-pass/]
const clean = (t: NotMatcher, text: string, what: string) => {
  for (const leak of LEAKS) t.notMatch(text, leak, `${what}: ${JSON.stringify(text)} has no ${leak}`)
}
type NotMatcher = { notMatch(a: unknown, b: RegExp, m: string): void }

const awsError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 }, $fault: 'client' })
const systemError = (code: string, message: string) => Object.assign(new Error(message), { code })

t.test('safeText removes ARNs, account ids, addresses, URLs and paths, keeps the rest', async (t) => {
  const cases: Array<[string, RegExp]> = [
    [
      'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: dynamodb:Scan on resource: arn:aws:dynamodb:eu-west-1:123456789012:table/orders',
      /^User: \[arn\] is not authorized to perform: dynamodb:Scan on resource: \[arn\]$/,
    ],
    ['connect ECONNREFUSED 127.0.0.1:1', /^connection refused \[address\]$/],
    ['getaddrinfo ENOTFOUND dynamodb.internal:8000', /\[address\]/],
    ['request to http://user:secret-pass@10.1.2.3:8000/x failed', /^request to \[url\] failed$/],
    ["ENOENT: no such file or directory, open '/var/lib/dc/exports/abc/file.csv'", /open '\[path\]'/],
    ['account 123456789012 is over its limit', /^account \[account\] is over its limit$/],
    [
      'One or more parameter values were invalid: Missing the key id in the item',
      /^One or more parameter values were invalid: Missing the key id in the item$/,
    ],
  ]
  for (const [input, expected] of cases) {
    const out = safeText(input)
    t.match(out, expected, input)
    clean(t, out, input)
  }
  t.ok(safeText('x'.repeat(5000)).length <= 300, 'long text is cut')
})

t.test('safeReason: a phrase for system errors, the name of AWS errors, scrubbed text otherwise', async (t) => {
  t.equal(safeReason(systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1')), 'connection refused')
  t.equal(safeReason(new Error('connect ECONNREFUSED 127.0.0.1:1')), 'connection refused', 'found in the message too')
  t.equal(safeReason(systemError('ENOENT', "ENOENT: open '/var/lib/x/y'")), 'file not found')
  t.equal(safeReason(awsError('AccessDeniedException', 'User: arn:aws:iam::123456789012:user/x is not authorized')), 'AccessDeniedException')
  t.equal(safeReason(new Error('plain words')), 'plain words')
  t.equal(safeReason('arn:aws:s3:::bucket-123456789012'), '[arn]')
})

t.test('mapDynamoError keeps the driver text on cause only', async (t) => {
  const refused = systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1')
  const unavailable = mapDynamoError(refused, 'orders')
  t.equal((unavailable as { code?: string }).code, 'DC_ERR_DYNAMO_UNAVAILABLE')
  t.equal(unavailable.message, 'DynamoDB is unavailable: connection refused')
  t.equal(unavailable.cause, refused, 'the full error stays on cause, for the log')

  const denied = mapDynamoError(awsError('AccessDeniedException', 'User: arn:aws:iam::123456789012:user/x is not authorized'), 'orders')
  t.equal(denied.message, 'DynamoDB is unavailable: AccessDeniedException')

  const rejected = mapDynamoError(awsError('ValidationException', 'Requested resource arn:aws:dynamodb:us-east-1:123456789012:table/orders: bad key'), 'orders')
  t.equal((rejected as { code?: string }).code, 'DC_ERR_DYNAMO_REJECTED')
  t.equal(rejected.message, 'DynamoDB rejected the request: Requested resource [arn]: bad key')
  for (const err of [unavailable, denied, rejected]) clean(t, err.message, err.message)
})
