import { SESClient } from '@aws-sdk/client-ses'
import type { Config } from '../config.ts'

/**
 * An SES client for the configured endpoint (aws-ses-v2-local in development and tests). One attempt
 * per send: the SDK's own retry cannot tell a refused send from one whose answer was lost, and would
 * mail twice; the email queue retries instead, after recording whether the send went out.
 */
export function createSesClient(config: Pick<Config, 'SES_ENDPOINT' | 'AWS_REGION'>): SESClient {
  return new SESClient({
    region: config.AWS_REGION,
    maxAttempts: 1,
    ...(config.SES_ENDPOINT ? { endpoint: config.SES_ENDPOINT } : {}),
  })
}
