import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
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

t.test('every catalogue error is created with new (the fastify convention)', async (t) => {
  const src = fileURLToPath(new URL('../../src/', import.meta.url))
  const files = (await readdir(src, { recursive: true })).filter((file) => file.endsWith('.ts'))
  t.ok(files.length > 50, 'the sources were found')
  const calls: string[] = []
  for (const file of files) {
    const lines = (await readFile(join(src, file), 'utf8')).split('\n')
    lines.forEach((line, i) => {
      if (/(?<!new )\berrors\.DC_ERR_[A-Z_]+\(/.test(line)) calls.push(`src/${file}:${i + 1}`)
    })
  }
  t.same(calls, [], 'no errors.DC_ERR_*(...) without new')
})
