import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'

/** Static checks of the Dockerfile and .dockerignore (no Docker engine needed). */

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
const exists = (path: string) => existsSync(new URL(`../../${path}`, import.meta.url))

const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; engines: { node: string } }

interface Instruction {
  keyword: string
  args: string
}

interface Stage {
  image: string
  name: string | undefined
  instructions: Instruction[]
}

/** Instructions with line continuations joined; comments (and parser directives) dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = []
  let pending = ''
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === '')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `
      continue
    }
    const full = (pending + line).trim()
    pending = ''
    if (!full) continue
    const [, keyword = '', args = ''] = /^(\S+)\s*([\s\S]*)$/.exec(full) ?? []
    out.push({ keyword: keyword.toUpperCase(), args })
  }
  return out
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'))
      const as = words.findIndex((w) => w.toUpperCase() === 'AS')
      stages.push({ image: words[0] ?? '', name: as >= 0 ? words[as + 1] : undefined, instructions: [] })
    } else {
      stages.at(-1)?.instructions.push(ins)
    }
  }
  return stages
}

const of = (stage: Stage | undefined, keyword: string) => (stage?.instructions ?? []).filter((i) => i.keyword === keyword).map((i) => i.args)

/** Exec form `["a", "b"]` as words; shell form split on spaces. */
function words(args: string): string[] {
  return args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/).filter(Boolean)
}

const stages = stagesOf(parseDockerfile(read('Dockerfile')))
const final = stages.at(-1)

t.test('multi-stage build on a Node that satisfies package.json engines', async (t) => {
  t.ok(stages.length >= 2, `${stages.length} stages`)
  const min = (/(\d+)\.(\d+)\.(\d+)/.exec(pkg.engines.node) ?? []).slice(1).map(Number)
  for (const stage of stages) {
    const m = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(stage.image)
    if (!t.ok(m, `${stage.image} is a node image with a version tag`)) continue
    const tag = m!
      .slice(1)
      .filter((p) => p !== undefined)
      .map(Number)
    t.ok(tag[0]! >= 20, `${stage.image}: node major >= 20`)
    // A tag like 20.20 floats over 20.20.x: compare only the components it names.
    let cmp = 0
    for (let i = 0; i < tag.length && cmp === 0; i++) cmp = Math.sign(tag[i]! - (min[i] ?? 0))
    t.ok(cmp >= 0, `${stage.image} satisfies engines ${pkg.engines.node}`)
  }
})

t.test('every stage runs on Node 24, the current LTS', async (t) => {
  for (const stage of stages) t.match(stage.image, /^(?:docker\.io\/)?(?:library\/)?node:24(?:[.-]|$)/, stage.image)
})

t.test('the build stage installs everything and compiles', async (t) => {
  const build = stages.slice(0, -1).find((s) => of(s, 'RUN').some((r) => r.includes('npm run build')))
  if (!t.ok(build, 'a stage before the last one runs npm run build')) return
  t.ok(
    of(build, 'RUN').some((r) => /\bnpm (ci|install)\b/.test(r) && !r.includes('--omit=dev')),
    'npm ci with dev dependencies (the compiler)',
  )
  t.ok(build!.name, 'the build stage is named')
  const copies = of(final, 'COPY').filter((c) => c.includes(`--from=${build!.name}`))
  t.ok(
    copies.some((c) => /\/dist\s+\S*dist\/?$/.test(c)),
    'the runtime copies dist/ from the build stage',
  )
})

t.test('the runtime stage has production dependencies only and runs as a non-root user', async (t) => {
  const installs = of(final, 'RUN').filter((r) => /\bnpm (ci|install|i)\b/.test(r))
  t.ok(installs.length > 0, 'the runtime installs its dependencies')
  for (const run of installs) {
    t.match(run, /\bnpm ci\b/, 'npm ci: exactly the lockfile (test/deploy/node-runtime.test.ts runs it under Node 24)')
    t.match(run, /--omit=dev/, 'production dependencies only')
    t.match(run, /--ignore-scripts/, 'postinstall runs `tap` (a dev tool): scripts must be skipped')
  }
  const user = of(final, 'USER').at(-1)
  t.ok(user, 'USER is set in the final stage')
  t.notOk(['root', '0', '0:0', 'root:root'].includes(user ?? 'root'), `runs as ${user}, not root`)
  t.ok(
    of(final, 'ENV').some((e) => /\bNODE_ENV[= ]+"?production"?(\s|$)/.test(e)),
    'NODE_ENV=production',
  )
})

t.test('one image, two roles: the API by default, and an API healthcheck', async (t) => {
  const cmd = of(final, 'CMD').at(-1)
  if (!t.ok(cmd, 'CMD in the final stage')) return
  t.same(words(cmd!), pkg.scripts['start:api']!.split(' '), 'CMD is start:api (node dist/api/server.js)')
  t.notOk(of(final, 'ENTRYPOINT').length, 'no ENTRYPOINT, so `node dist/workers/main.js` can replace CMD')
  t.ok(
    of(final, 'EXPOSE').some((e) => e.split(/\s+/).includes('3000')),
    'EXPOSE 3000',
  )
  const health = of(final, 'HEALTHCHECK').at(-1) ?? ''
  t.match(health, /fetch\(/, 'healthcheck uses node fetch (no curl in the slim image)')
  t.match(health, /127\.0\.0\.1/)
  t.match(health, /\/health/)
  t.match(health, /3000/)
  const build = JSON.parse(read('tsconfig.build.json')) as {
    compilerOptions: { rootDir: string; outDir: string }
  }
  t.equal(build.compilerOptions.rootDir, 'src')
  t.equal(build.compilerOptions.outDir, 'dist')
  t.ok(exists('src/api/server.ts'), 'dist/api/server.js is compiled from src/api/server.ts')
  t.ok(exists('src/workers/main.ts'), 'dist/workers/main.js is compiled from src/workers/main.ts')
})

t.test('what the Dockerfile copies is in the build context', async (t) => {
  const ignored = read('.dockerignore')
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/^\/|\/$/g, ''))
    .filter((l) => l && !l.startsWith('#'))
  for (const required of ['node_modules', 'dist', '.git', '.env', '.data']) {
    t.ok(ignored.includes(required), `.dockerignore excludes ${required}`)
  }
  for (const stage of stages) {
    for (const copy of of(stage, 'COPY')) {
      const parts = copy.split(/\s+/)
      if (parts.some((p) => p.startsWith('--from='))) continue
      const sources = parts.filter((p) => !p.startsWith('--')).slice(0, -1)
      for (const source of sources) {
        const path = source.replace(/^\.\//, '').replace(/\/$/, '')
        t.ok(exists(path), `${path} exists`)
        t.notOk(ignored.includes(path), `${path} is not excluded by .dockerignore`)
      }
    }
  }
})
