import { S3Client } from '@aws-sdk/client-s3'
import type { Config } from '../../config.ts'
import { createLocalStorage } from './local.ts'
import { createS3Storage } from './s3.ts'
import type { ExportStorage } from './types.ts'

export { createLocalStorage } from './local.ts'
export { createS3Storage } from './s3.ts'
export { type ExportStorage, PartLostError, type PartPosition, type PartRef } from './types.ts'

type StorageConfig = Pick<Config, 'EXPORT_STORAGE' | 'EXPORT_DIR' | 'EXPORT_S3_BUCKET' | 'S3_ENDPOINT' | 'AWS_REGION' | 'REDIS_PREFIX'>

/** The export storage EXPORT_STORAGE selects: a local directory or an S3 bucket (S3_ENDPOINT for a stand-in). */
export function createExportStorage(config: StorageConfig): ExportStorage {
  if (config.EXPORT_STORAGE === 'local') return createLocalStorage(config.EXPORT_DIR, config.REDIS_PREFIX)
  const client = new S3Client({
    region: config.AWS_REGION,
    // S3-compatible stand-ins (s3rver, MinIO) answer path-style requests only.
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT, forcePathStyle: true } : {}),
  })
  return createS3Storage({ client, bucket: config.EXPORT_S3_BUCKET!, prefix: config.REDIS_PREFIX })
}
