import { type Job, UnrecoverableError } from 'bullmq'
import { completedEmail, failedEmail } from '../shared/email/export-emails.ts'
import { createSesSender, type EmailSender } from '../shared/email/sender.ts'
import { createSesClient } from '../shared/email/ses-client.ts'
import { exportPaths, tenantOf } from '../shared/exports/index.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import type { WorkerDeps } from './deps.ts'
import { exportServices } from './export-services.ts'

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
export default function createEmailProcessor(
  deps: WorkerDeps,
  sender: EmailSender = createSesSender(createSesClient(deps.config), deps.config.SES_FROM_EMAIL),
) {
  const { config, logger } = deps
  const { store, tokens } = exportServices(deps)
  const publicUrl = config.PUBLIC_URL.replace(/\/+$/, '')

  return async function email(job: Job<QueuePayload<'email'>>) {
    const { template, exportId } = job.data
    const record = await store.get(exportId)
    if (!record?.notify) return { sent: false, reason: record ? 'no recipient' : 'export removed' }
    if (await store.mailSent(exportId, template)) return { sent: false, reason: 'already sent' }
    let message: ReturnType<typeof failedEmail>
    if (template === 'export-completed') {
      if (!tokens) throw new UnrecoverableError('CURSOR_SECRET is not set on this worker: it cannot sign download links')
      const { token, expiresAt } = tokens.sign(exportId, tenantOf(record))
      const url = `${publicUrl}${exportPaths(exportId).download}?token=${token}`
      message = completedEmail(record, { url, expiresAt })
    } else {
      message = failedEmail(record)
    }
    const claim = await store.claimMail(exportId, template, JSON.stringify({ jobId: job.id, attempt: job.attemptsMade + 1, at: new Date().toISOString() }))
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
      await store
        .releaseMail(exportId, template)
        .catch((cause: Error) => logger.warn({ msg: 'email.claim.not-released', template, exportId, err: cause.message }))
      throw err
    }
    await store.markMailSent(exportId, template, messageId)
    logger.info({ msg: 'email.sent', template, exportId, messageId })
    return { sent: true, messageId }
  }
}
