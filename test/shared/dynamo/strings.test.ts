import t from 'tap'
import { hasLoneSurrogate, quoteForMessage } from '../../../src/shared/dynamo/strings.ts'

t.test('hasLoneSurrogate finds exactly the strings UTF-8 cannot hold', async (t) => {
  for (const fine of ['', 'plain', 'é', '😀', 'a\u{1F600}b', '\uFFFD']) t.notOk(hasLoneSurrogate(fine), JSON.stringify(fine))
  for (const lone of ['\uD800', 'a\uDC00', '😀'.slice(0, 1), `x${'😀'.slice(1)}y`, '\uDC00\uD800']) {
    t.ok(hasLoneSurrogate(lone), JSON.stringify(lone))
  }
})

t.test('quoteForMessage quotes as JSON and cuts what is longer than 48 characters', async (t) => {
  t.equal(quoteForMessage('a"b'), '"a\\"b"')
  t.equal(quoteForMessage('x'.repeat(48)), `"${'x'.repeat(48)}"`)
  t.equal(quoteForMessage('x'.repeat(49)), `"${'x'.repeat(45)}..."`)
})
