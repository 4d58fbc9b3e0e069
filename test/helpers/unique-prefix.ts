import { randomBytes } from 'node:crypto'

/**
 * A Redis key prefix of this test's own. Apart from helpers/app.ts, which loads the whole API (Fastify,
 * the AWS SDK, BullMQ): a test of the cache core should not pay for that to make a prefix.
 */
export const uniquePrefix = () => `t${randomBytes(5).toString('hex')}`
