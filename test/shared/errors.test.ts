import t from 'tap'
import { errors } from '../../src/shared/errors.ts'

t.test('every error key equals its code and carries a status', async (t) => {
  for (const [key, Err] of Object.entries(errors)) {
    const err = new Err('x', 'y')
    t.equal(err.code, key, key)
    t.match(key, /^DC_ERR_[A-Z_]+$/)
    t.ok(err.statusCode >= 400 && err.statusCode < 600, `${key} has an HTTP status`)
  }
})

t.test('a wrapped failure keeps its cause', async (t) => {
  const cause = new Error('socket hang up')
  const err = new errors.DC_ERR_DYNAMO_UNAVAILABLE('timeout', { cause })
  t.equal(err.cause, cause)
  t.equal(err.message, 'DynamoDB is unavailable: timeout')
})
