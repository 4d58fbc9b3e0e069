import { type Job, UnrecoverableError } from 'bullmq'
import { completedEmail, failedEmail } from '../shared/email/export-emails.ts'
import { createSesSender, type EmailSender } from '../shared/email/sender.ts'
import { createSesClient } from '../shared/email/ses-client.ts'
import { exportPaths } from '../shared/exports/index.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import type { WorkerDeps } from './deps.ts'
import { exportServices } from './export-services.ts'

/** The field on the export record that says a send began (the claim); `mail:<template>` says it ended. */
const sendingField = (template: string) => `mail:${template}:sending`

/** Sets the claim unless there is one (returns it) or the export is gone (0); 1 when claimed. */
const CLAIM_SCRIPT = `
if redis.call('exists', KEYS[1]) == 0 then return 0 end
local held = redis.call('hget', KEYS[1], ARGV[1])
if held then return held end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
return 1
`

/**
 * Sends an export's email through SES. The message is rendered when it is sent, from the export as
 * it is then, with a freshly signed download link. SES failures throw and the queue retries with
 * backoff; the export itself is already finished and never depends on this. A send that SES accepted
 * is marked on the export, so a job re-run after a crash does not mail again.
 *
 * At most once: before calling SES the send is claimed on the export. A process that dies during the
 * call leaves the claim without the mark; SES may or may not have accepted the message and has no way
 * to ask, so the re-run does not send again (a duplicate is what a retry would risk) and logs
 * `email.outcome-unknown` for an operator instead. An error SES answered releases the claim: retried.
 */
export default function createEmailProcessor(deps: WorkerDeps, sender: EmailSender = createSesSender(createSesClient(deps.config), deps.config.SES_FROM_EMAIL)) {
  const { config, logger } = deps
  const { store, tokens } = exportServices(deps)
  const publicUrl = config.PUBLIC_URL.replace(/\/+$/, '')

  /**
   * Claims the send on the export record (a `mail:` field, so not part of the record's view).
   * 'claimed', 'gone' when the export was removed, or the earlier attempt's claim when there is one.
   */
  async function claimSend(exportId: string, template: string, job: Job): Promise<string> {
    const claim = JSON.stringify({ jobId: job.id, attempt: job.attemptsMade + 1, at: new Date().toISOString() })
    const out = (await deps.redis.eval(CLAIM_SCRIPT, 1, deps.keys.exportRecord(exportId), sendingField(template), claim)) as string | number
    return out === 1 ? 'claimed' : out === 0 ? 'gone' : String(out)
  }

  return async function email(job: Job<QueuePayload<'email'>>) {
    const { template, exportId } = job.data
    const record = await store.get(exportId)
    if (!record?.notify) return { sent: false, reason: record ? 'no recipient' : 'export removed' }
    if (await store.mailSent(exportId, template)) return { sent: false, reason: 'already sent' }
    let message: ReturnType<typeof failedEmail>
    if (template === 'export-completed') {
      if (!tokens) throw new UnrecoverableError('CURSOR_SECRET is not set on this worker: it cannot sign download links')
      const { token, expiresAt } = tokens.sign(exportId)
      const url = `${publicUrl}${exportPaths(exportId).download}?token=${token}`
      message = completedEmail(record, { url, expiresAt })
    } else {
      message = failedEmail(record)
    }
    const claim = await claimSend(exportId, template, job)
    if (claim === 'gone') return { sent: false, reason: 'export removed' }
    if (claim !== 'claimed') {
      logger.warn({ msg: 'email.outcome-unknown', template, exportId, interrupted: claim, jobId: job.id })
      return { sent: false, reason: 'an earlier attempt was interrupted while sending; not sent again' }
    }
    let messageId: string
    try {
      messageId = await sender.send({ to: record.notify, ...message })
    } catch (err) {
      // SES answered with an error (or could not be reached): nothing was sent, a retry may send.
      await deps.redis.hdel(deps.keys.exportRecord(exportId), sendingField(template)).catch((cause: Error) =>
        logger.warn({ msg: 'email.claim.not-released', template, exportId, err: cause.message }),
      )
      throw err
    }
    await store.markMailSent(exportId, template, messageId)
    logger.info({ msg: 'email.sent', template, exportId, messageId })
    return { sent: true, messageId }
  }
}
