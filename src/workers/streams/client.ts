import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams'
import type { Config } from '../../shared/config.ts'

/**
 * The DynamoDB Streams client of the follower. Unlike DynamoDB reads it does not go through the gateway
 * (breaker, budget): stream reads have their own limits, so the SDK's own retries (throttling) are kept.
 */
export function createStreamsClient(config: Pick<Config, 'DYNAMODB_STREAMS_ENDPOINT' | 'AWS_REGION' | 'DYNAMO_TIMEOUT_MS'>): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient({
    region: config.AWS_REGION,
    ...(config.DYNAMODB_STREAMS_ENDPOINT ? { endpoint: config.DYNAMODB_STREAMS_ENDPOINT } : {}),
    requestHandler: { requestTimeout: config.DYNAMO_TIMEOUT_MS, connectionTimeout: config.DYNAMO_TIMEOUT_MS },
  })
}
