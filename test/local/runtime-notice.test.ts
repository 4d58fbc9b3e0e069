import t from 'tap'
import { runtimeNotice } from '../../src/local/runtime-notice.ts'

t.test('one line on a Node the AWS SDK will stop supporting, nothing on a current one', async (t) => {
  const line = runtimeNotice('v20.20.2')
  t.match(line, /^Node v20\.20\.2 is fine for development; AWS SDK releases after early January 2027 need Node >= 22/)
  t.notMatch(line, /\n/)
  t.equal(runtimeNotice('v22.12.0'), undefined)
  t.equal(runtimeNotice('v24.22.3'), undefined)
  t.equal(runtimeNotice('not a version'), undefined)
})
