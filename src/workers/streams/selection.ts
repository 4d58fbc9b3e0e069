import { type DynamoDBStreamsClient, ListStreamsCommand } from '@aws-sdk/client-dynamodb-streams'
import { createTablePolicy } from '../../shared/access.ts'
import type { Config } from '../../shared/config.ts'

/** STREAMS_FOLLOW as a predicate: off follows nothing, auto every allowed table, globs the allowed tables they match. */
export function followPolicy(config: Pick<Config, 'STREAMS_FOLLOW' | 'TABLES_ALLOW' | 'TABLES_DENY'>): (table: string) => boolean {
  const spec = config.STREAMS_FOLLOW.trim()
  if (spec === 'off') return () => false
  const allowed = createTablePolicy(config.TABLES_ALLOW, config.TABLES_DENY)
  if (spec === 'auto') return allowed
  const globs = createTablePolicy(spec, '')
  return (table) => allowed(table) && globs(table)
}

/**
 * The stream to follow per followed table: its newest (a table whose stream was disabled and enabled
 * again lists both; labels are creation times, so the greatest is the newest).
 */
export async function followedStreams(client: DynamoDBStreamsClient, follows: (table: string) => boolean): Promise<Map<string, string>> {
  const newest = new Map<string, { arn: string; label: string }>()
  let start: string | undefined
  do {
    const page = await client.send(new ListStreamsCommand({ ...(start ? { ExclusiveStartStreamArn: start } : {}) }))
    for (const s of page.Streams ?? []) {
      if (!s.TableName || !s.StreamArn || !follows(s.TableName)) continue
      const have = newest.get(s.TableName)
      if (!have || (s.StreamLabel ?? '') > have.label) newest.set(s.TableName, { arn: s.StreamArn, label: s.StreamLabel ?? '' })
    }
    start = page.LastEvaluatedStreamArn
  } while (start)
  return new Map([...newest].map(([table, { arn }]) => [table, arn]))
}
