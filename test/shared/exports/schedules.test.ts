import t from 'tap'
import { checkCron } from '../../../src/shared/exports/schedules.ts'

const NOON_UTC = Date.UTC(2026, 2, 28, 12, 0, 0) // a Saturday, the day before Europe's clocks go forward

t.test('checkCron gives the next run of 5- and 6-field patterns in the time zone', async (t) => {
  t.equal(checkCron('* * * * *', 'UTC', NOON_UTC + 1), NOON_UTC + 60_000, 'every minute: the next whole minute')
  t.equal(checkCron('*/10 * * * * *', 'UTC', NOON_UTC + 1), NOON_UTC + 10_000, 'seconds first')
  t.equal(checkCron('0 6 * * *', 'Asia/Kolkata', NOON_UTC), Date.UTC(2026, 2, 29, 0, 30), '06:00 in Kolkata is 00:30 UTC')
  t.equal(checkCron('0 6 * * *', 'Europe/Paris', NOON_UTC), Date.UTC(2026, 2, 29, 4, 0), '06:00 in Paris after the clocks went forward is 04:00 UTC')
})

t.test('checkCron refuses what BullMQ would not run, with DC_ERR_VALIDATION', async (t) => {
  for (const [cron, tz] of [
    ['61 * * * *', 'UTC'],
    ['* 25 * * *', 'UTC'],
    ['every minute', 'UTC'],
    ['* * * *', 'UTC'],
    ['* * * * * * *', 'UTC'],
    ['* * * * *', 'Mars/Olympus_Mons'],
    ['* * * * *', ''],
  ]) {
    t.throws(() => checkCron(cron!, tz!, NOON_UTC), { code: 'DC_ERR_VALIDATION' }, `${cron} in '${tz}'`)
  }
})
