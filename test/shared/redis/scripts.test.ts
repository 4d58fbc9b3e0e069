import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import t from 'tap'
import { ENTRY_FIELDS } from '../../../src/shared/cache/entry-layout.ts'
import { defineScripts, readScript, SCRIPTS, SCRIPTS_DIR, type ScriptName } from '../../../src/shared/redis/scripts.ts'
import { ownRedis } from '../../helpers/services.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const dir = fileURLToPath(SCRIPTS_DIR)
const names = Object.keys(SCRIPTS) as ScriptName[]
const luaFiles = readdirSync(dir).filter((f) => f.endsWith('.lua'))
const indexes = (text: string, what: 'KEYS' | 'ARGV') => new Set([...text.matchAll(new RegExp(`${what}\\[(\\d+)`, 'g'))].map((m) => Number(m[1])))

t.test('every script in the registry has its .lua file and every .lua file is in the registry', async (t) => {
  t.same(luaFiles.map((f) => f.slice(0, -'.lua'.length)).sort(), [...names].sort())
  t.same(
    readdirSync(dir).filter((f) => !f.endsWith('.lua')),
    [],
    'nothing but .lua files in scripts/',
  )
})

t.test("each file starts with BullMQ's header: what it does, Input (KEYS, ARGV), Output", async (t) => {
  for (const name of names) {
    const file = readFileSync(join(dir, `${name}.lua`), 'utf8')
    const header = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(file)?.[1]
    if (!t.ok(header, `${name}: starts with a --[[ ... ]] header`)) continue
    const [what, rest = ''] = header!.split(/\n\s*Input:\n/)
    t.match(what, /\S/, `${name}: says what it does`)
    const [input = '', output = ''] = rest.split(/\n\s*Output:\n/)
    t.match(output, /\S/, `${name}: states its reply`)
    const declared = SCRIPTS[name].numberOfKeys
    const listed = [...input.matchAll(/^\s*KEYS\[(\d+)\] \S/gm)].map((m) => Number(m[1]))
    // A script of a variable number of keys (null) lists its fixed keys, then the rest as KEYS[i..].
    const open = /^\s*KEYS\[(\d+)\.\.\] \S/m.exec(input)
    const n = declared ?? Number(open?.[1] ?? 0) - 1
    if (declared === null) t.ok(open, `${name}: a variable number of keys, the rest listed as KEYS[i..]`)
    else t.notOk(open, `${name}: a fixed number of keys lists no KEYS[i..]`)
    t.same(
      listed,
      Array.from({ length: n }, (_, i) => i + 1),
      `${name}: KEYS[1..${n}] each on its own line, as numberOfKeys says`,
    )
    t.ok(/^\s*ARGV\[\d+(\.\.[^\]]*)?\] \S/m.test(input), `${name}: lists its ARGV`)
    const body = readScript(name)
    t.notMatch(body, /Input:|Output:/, `${name}: the header is not sent to Redis`)
    if (declared !== null) t.ok(Math.max(0, ...indexes(body, 'KEYS')) <= n, `${name}: the script reads no key past KEYS[${n}]`)
    for (const i of indexes(body, 'ARGV')) t.match(input, new RegExp(`ARGV\\[${i}\\b|ARGV\\[\\d+\\.\\.`), `${name}: ARGV[${i}] is in the header`)
  }
})

t.test('the cache read script names the entry fields of entry-layout.ts', async (t) => {
  const body = readScript('dcCacheRead')
  t.ok(body.includes(`'HMGET', KEYS[1], '${ENTRY_FIELDS.dependencies}', '${ENTRY_FIELDS.meta}', '${ENTRY_FIELDS.etag}')`))
  t.ok(body.includes(`'HSET', KEYS[1], '${ENTRY_FIELDS.dependencies}', `), 'a soft serve clears the composite')
  t.ok(body.includes(`'HGET', KEYS[1], '${ENTRY_FIELDS.body}')`))
})

t.test('no Lua, defineCommand or ioredis augmentation anywhere in src/ but the registry', async (t) => {
  const registry = 'src/shared/redis/scripts.ts'
  const offenders: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.(ts|tsx|js)$/.test(e.name) && relative(root, p) !== registry) {
        readFileSync(p, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (/defineCommand\(|\blua:|declare module 'ioredis'|\.eval(sha)?\(|redis\.call\('[A-Z]+', KEYS/.test(line))
              offenders.push(`${relative(root, p)}:${i + 1}: ${line.trim()}`)
          })
      }
    }
  }
  walk(join(root, 'src'))
  t.same(offenders, [])
})

t.test('defineScripts defines each script once per connection', async (t) => {
  const fake = () => {
    const defined: Array<{ name: string; numberOfKeys?: number; lua: string }> = []
    return {
      defined,
      defineCommand: (name: string, d: { numberOfKeys?: number; lua: string }) => defined.push({ name, ...d }),
    }
  }
  const a = fake()
  const b = fake()
  defineScripts(a as never)
  defineScripts(a as never)
  defineScripts(b as never)
  t.same(
    a.defined.map((d) => d.name),
    names,
  )
  t.same(a.defined, b.defined, 'a second connection gets its own definitions')
  for (const d of a.defined) {
    t.equal(d.numberOfKeys ?? null, SCRIPTS[d.name as ScriptName].numberOfKeys)
    t.equal(d.lua, readScript(d.name as ScriptName))
  }
})

t.test('Redis compiles every script', async (t) => {
  const server = process.env.REDIS_URL ? { url: process.env.REDIS_URL, close: async () => {} } : await ownRedis()
  t.teardown(() => server.close())
  const redis = new Redis(server.url)
  t.teardown(() => redis.quit())
  for (const name of names) t.match(await redis.script('LOAD', readScript(name)), /^[0-9a-f]{40}$/, name)
})

t.test('a full Redis (noeviction) refuses writes but runs the bump, flagged allow-oom in its first line', async (t) => {
  t.match(readScript('dcCacheBump'), /^#!lua flags=allow-oom\n/, 'the shebang is the first line Redis sees')
  // Its own Redis: this one is made full.
  const server = await ownRedis()
  t.teardown(() => server.close())
  const redis = new Redis(server.url)
  t.teardown(() => redis.quit())
  defineScripts(redis)
  await redis.config('SET', 'maxmemory-policy', 'noeviction')
  await redis.config('SET', 'maxmemory', '1')
  await t.rejects(redis.set('{t}:plain', 'x'), /OOM/, 'a plain write is refused')
  t.same(await redis.dcCacheBump(2, '{t}:gen', '{t}:dep', 'hard', 60_000, '{t}:channel', 'announce'), ['1', '1'], 'the bump is not')
  t.same(await redis.mget('{t}:gen', '{t}:dep'), ['1', '1'])
  await redis.config('SET', 'maxmemory', '0')
})

t.test('the build copies the .lua files beside the compiled registry', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  const build = pkg.scripts.build!.split(' && ')
  const copy = build.find((step) => step.includes('src/shared/redis/scripts'))
  if (!t.ok(copy, 'npm run build has a step copying src/shared/redis/scripts')) return
  t.ok(build.findIndex((s) => s.startsWith('tsc ')) < build.indexOf(copy!), 'after tsc')
  // The step itself, run in a scratch tree shaped like the project after tsc.
  const scratch = mkdtempSync(join(tmpdir(), 'dc-scripts-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  mkdirSync(join(scratch, 'src/shared/redis/scripts'), { recursive: true })
  mkdirSync(join(scratch, 'dist/shared/redis'), { recursive: true })
  for (const f of luaFiles) writeFileSync(join(scratch, 'src/shared/redis/scripts', f), readFileSync(join(dir, f)))
  for (let run = 1; run <= 2; run++) {
    const r = spawnSync('sh', ['-c', copy!], { cwd: scratch, encoding: 'utf8' })
    t.equal(r.status, 0, `run ${run}: ${r.stderr}`)
    t.same(readdirSync(join(scratch, 'dist/shared/redis/scripts')).sort(), [...luaFiles].sort(), `run ${run}: dist/shared/redis/scripts/ holds the .lua files`)
  }
  // The compiled registry loads its scripts from dist/ (present after `npm run build`, as in `npm test`).
  if (!existsSync(join(root, 'dist/shared/redis/scripts.js'))) return
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('./dist/shared/redis/scripts.js'); console.log(JSON.stringify(m.SCRIPTS))"],
    { cwd: root, encoding: 'utf8' },
  )
  t.equal(r.status, 0, `dist/shared/redis/scripts.js loads: ${r.stderr}`)
})
