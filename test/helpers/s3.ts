import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import type { Tap } from './tap.ts'

/** The parts of s3rver this helper uses (it ships no types). */
interface S3rverServer {
  run(): Promise<{ port: number }>
  close(): Promise<void>
}
type S3rverClass = new (options: {
  port: number
  address: string
  silent: boolean
  directory: string
  configureBuckets: Array<{ name: string; configs: never[] }>
}) => S3rverServer

export interface TestS3 {
  endpoint: string
  bucket: string
  /** A client for assertions (listing what is left in the bucket). */
  client: S3Client
  close(): Promise<void>
}

/** s3rver only accepts its own key pair; dynalite and the SES stand-in accept any, so tests use this one. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }

/**
 * s3rver, an S3 stand-in, on a free port with one empty bucket, stopped at teardown. Sets this
 * process's AWS credentials to s3rver's (pass S3RVER_CREDENTIALS to child processes).
 */
export async function startS3(t: Tap, bucket = 'exports'): Promise<TestS3> {
  Object.assign(process.env, S3RVER_CREDENTIALS)
  const directory = await mkdtemp(join(tmpdir(), 'dc-s3rver-'))
  const specifier = 's3rver'
  const { default: S3rver } = (await import(specifier)) as { default: S3rverClass }
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true })
  const s3: TestS3 = {
    endpoint,
    bucket,
    client,
    close: async () => {
      client.destroy()
      await server.close()
      await rm(directory, { recursive: true, force: true })
    },
  }
  t.teardown(() => s3.close())
  return s3
}
