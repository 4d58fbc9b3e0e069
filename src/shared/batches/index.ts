export { batchFingerprint, idempotencyDigest, newBatchId, tableOfBatchId } from './batch-id.ts'
export { inspectItem, MAX_ITEM_BYTES } from './item-rules.ts'
export {
  type BatchFormat,
  type BatchOperation,
  decodeOperations,
  encodeOperations,
  keyNames,
  keyString,
  MAX_LISTED_PROBLEMS,
  MAX_OPERATIONS,
  type OperationProblem,
  parseOperations,
  toWriteRequest,
  writeRequestAttributes,
} from './operations.ts'
export { type BatchStatus, type BatchStore, type BatchView, createBatchStore, type NewBatch, type Progress, type StoredBatch } from './store.ts'
export { DEFAULT_RETRY, type RetryOutcome, type RetryPolicy, retryUnprocessed } from './unprocessed.ts'
