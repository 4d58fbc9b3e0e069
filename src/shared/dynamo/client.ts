import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import type { Config } from '../config.ts'

export interface DynamoClients {
  /** The low-level client: attribute-value JSON in and out (view=typed, exact round trips). */
  raw: DynamoDBClient
  /** The document client with number wrapping, so no number loses a digit. */
  doc: DynamoDBDocumentClient
  close(): void
}

/** DynamoDB clients for the configured endpoint; the SDK default endpoint when none is set. */
export function createDynamoClients(config: Pick<Config, 'DYNAMODB_ENDPOINT' | 'AWS_REGION' | 'DYNAMO_TIMEOUT_MS'>): DynamoClients {
  const raw = new DynamoDBClient({
    region: config.AWS_REGION,
    ...(config.DYNAMODB_ENDPOINT ? { endpoint: config.DYNAMODB_ENDPOINT } : {}),
    // Our own resilience layer retries; the SDK's would multiply attempts and hide latency.
    maxAttempts: 1,
    requestHandler: { requestTimeout: config.DYNAMO_TIMEOUT_MS, connectionTimeout: config.DYNAMO_TIMEOUT_MS },
  })
  const doc = DynamoDBDocumentClient.from(raw, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    unmarshallOptions: { wrapNumbers: true },
  })
  return { raw, doc, close: () => raw.destroy() }
}
