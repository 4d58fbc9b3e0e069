import { SESClient } from '@aws-sdk/client-ses'
import type { Config } from '../config.ts'

/** An SES client for the configured endpoint (aws-ses-v2-local in development and tests). */
export function createSesClient(config: Pick<Config, 'SES_ENDPOINT' | 'AWS_REGION'>): SESClient {
  return new SESClient({
    region: config.AWS_REGION,
    ...(config.SES_ENDPOINT ? { endpoint: config.SES_ENDPOINT } : {}),
  })
}
