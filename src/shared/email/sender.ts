import { type SESClient, SendEmailCommand } from '@aws-sdk/client-ses'

export interface EmailMessage {
  to: string
  subject: string
  text: string
  html: string
}

/** Sends email; one method so a test or another provider can stand in for SES. */
export interface EmailSender {
  /** Resolves with the provider's message id; throws when the provider did not accept the message. */
  send(message: EmailMessage): Promise<string>
  close(): void
}

/** Sends through SES SendEmail (aws-ses-v2-local in development and tests) from SES_FROM_EMAIL. */
export function createSesSender(client: SESClient, from: string): EmailSender {
  return {
    async send({ to, subject, text, html }) {
      const out = await client.send(
        new SendEmailCommand({
          Source: from,
          Destination: { ToAddresses: [to] },
          Message: {
            Subject: { Data: subject, Charset: 'UTF-8' },
            Body: { Text: { Data: text, Charset: 'UTF-8' }, Html: { Data: html, Charset: 'UTF-8' } },
          },
        }),
      )
      return out.MessageId ?? ''
    },
    close: () => client.destroy(),
  }
}
