import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import YAML from 'yaml'
import { loadRules, promtool, RULES_PATH, RULES_TEST_PATH } from '../helpers/prometheus.ts'

const groups = await loadRules()
const rules = groups.flatMap((g) => g.rules)
const alerts = rules.filter((r) => r.alert)
const records = rules.filter((r) => r.record)

interface UnitTests {
  tests: Array<{
    alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }>
    promql_expr_test?: Array<{ expr: string }>
  }>
}
const unitTests = YAML.parse(await readFile(RULES_TEST_PATH, 'utf8')) as UnitTests

t.test('promtool check rules: the rule file is valid', async (t) => {
  const { code, output } = await promtool(['check', 'rules', RULES_PATH])
  t.equal(code, 0, output)
  t.match(output, `SUCCESS: ${rules.length} rules found`)
})

t.test('every alert has for:, a severity, summary, description and runbook', async (t) => {
  t.ok(alerts.length >= 9, `${alerts.length} alerts`)
  for (const a of alerts) {
    t.match(a.for, /^\d+[smh]$/, `${a.alert} waits before it fires`)
    t.match(a.labels?.severity, /^(warning|critical)$/, `${a.alert} severity`)
    for (const k of ['summary', 'description', 'runbook']) t.ok(a.annotations?.[k], `${a.alert} ${k}`)
    t.match(a.annotations?.runbook, `ops/README.md#${a.alert!.toLowerCase()}`, `${a.alert} runbook points at its README section`)
  }
})

t.test('the unit tests cover each alert firing and not firing, and the recording rules', async (t) => {
  const cases = unitTests.tests.flatMap((u) => u.alert_rule_test ?? [])
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a.alert)
    t.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `${a.alert} fires in a test`,
    )
    t.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `${a.alert} stays quiet in a test`,
    )
  }
  // A recording rule is covered when a promql test reads it, or a tested alert or covered rule is built on it.
  const covered = unitTests.tests.flatMap((u) => (u.promql_expr_test ?? []).map((p) => p.expr)).concat(alerts.map((a) => a.expr))
  for (let grew = true; grew; ) {
    grew = false
    for (const r of records) {
      if (covered.includes(r.expr) || !covered.some((e) => e.includes(r.record!))) continue
      covered.push(r.expr)
      grew = true
    }
  }
  for (const r of records)
    t.ok(
      covered.some((e) => e.includes(r.record!)),
      `${r.record} is tested`,
    )
})

t.test('promtool test rules: every unit test passes', async (t) => {
  const { code, output } = await promtool(['test', 'rules', RULES_TEST_PATH])
  t.equal(code, 0, output)
  t.match(output, /SUCCESS/)
})

t.test('the unit tests have teeth: a broken threshold fails them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dc-rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const broken = (await readFile(RULES_PATH, 'utf8')).replace('job:dynacache_dynamo_error_ratio:rate5m > 0.05', 'job:dynacache_dynamo_error_ratio:rate5m > 0.5')
  t.not(broken, await readFile(RULES_PATH, 'utf8'), 'the threshold was found and changed')
  await writeFile(join(dir, 'rules.yml'), broken)
  await writeFile(join(dir, 'rules.test.yml'), await readFile(RULES_TEST_PATH, 'utf8'))
  const { code, output } = await promtool(['test', 'rules', join(dir, 'rules.test.yml')])
  t.not(code, 0, 'promtool test rules fails')
  t.match(output, /alertname: DynacacheDynamoErrorRateHigh/, 'naming the alert that no longer fires')
})
