import type { Scenario } from './context.ts'

/**
 * Scenarios of features still being built. Each prints "not built" until its route exists; adding one
 * is writing its `run` (and starting a worker in lib/stack.ts if it needs one).
 */
export const exportJsonl: Scenario = {
  id: '6',
  title: 'export 200,000 items to JSONL vs parallel Scan',
  target: '>= 0.7x, worker RSS < 250 MB',
  requires: 'exports',
}

export const batchWrites: Scenario = {
  id: '7',
  title: 'batch writes: 20,000 puts vs BatchWriteItem loop',
  target: 'reported; 30% unprocessed: all written',
  requires: 'batches',
}
