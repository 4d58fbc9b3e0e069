import t from 'tap'
import { createRequestIds } from '../../src/api/request-id.ts'

t.test('request ids are unique within a process and across processes (random prefix + counter)', async (t) => {
  const [a, b] = [createRequestIds(), createRequestIds()]
  const ids = new Set<string>()
  for (let i = 0; i < 10_000; i++) {
    ids.add(a())
    ids.add(b())
  }
  t.equal(ids.size, 20_000)
  t.match(a(), /^[0-9a-f]{12}-[0-9a-z]+$/)
})
