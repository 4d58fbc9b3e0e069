import { execFile, execFileSync } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { node24 } from '../helpers/node24.ts'

const run = promisify(execFile)
const root = new URL('../../', import.meta.url).pathname
// The npm on PATH (its `npm` is a link to bin/npm-cli.js), run by the Node 24 binary.
const npmCli = realpathSync(execFileSync('sh', ['-c', 'command -v npm']).toString().trim())

t.test("the runtime image's install, `npm ci --omit=dev` of the lockfile, works under Node 24", async (t) => {
  const node = await node24()
  const { stdout: version } = await run(node, ['--version'])
  t.match(version.trim(), /^v24\./)
  const dir = t.testdir()
  await copyFile(join(root, 'package.json'), join(dir, 'package.json'))
  await copyFile(join(root, 'package-lock.json'), join(dir, 'package-lock.json'))
  const install = await run(node, [npmCli, 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, timeout: 300_000 })
  t.match(install.stdout, /added \d+ packages/)
  // The production dependencies load on Node 24 and the SDK has nothing to warn about there.
  const probe = await run(
    node,
    [
      '--input-type=module',
      '-e',
      "await import('fastify'); await import('bullmq'); await import('ioredis'); const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb'); new DynamoDBClient({ region: 'us-east-1' }); console.log('loaded')",
    ],
    { cwd: dir },
  )
  t.equal(probe.stdout.trim(), 'loaded')
  t.notMatch(probe.stderr, /NodeVersionSupportWarning/)
})
