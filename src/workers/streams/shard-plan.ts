/** A shard as DescribeStream lists it. */
export interface ShardInfo {
  id: string
  parent?: string
  closed: boolean
}

/** A shard's state in the table's shards hash: `d` done, `c:<seq>` applied up to seq; absent: from the trim horizon. */
export const DONE = 'd'
export const checkpointState = (seq: string) => `c:${seq}`
export const checkpointOf = (state: string | undefined) => (state?.startsWith('c:') ? state.slice(2) : undefined)
/** The hash field holding the stream ARN the states belong to. */
export const ARN_FIELD = '@arn'

export interface ShardPlan {
  /** Shards to read now, parents before children. */
  ready: string[]
  /**
   * Shards whose unread history is gone: known and unfinished but no longer listed (trimmed away), or
   * the unlisted parent of a shard nobody has started. The table must be invalidated whole, then each is done.
   */
  lost: string[]
  /** Done shards no longer listed and no listed shard's parent: their states can go. */
  prune: string[]
}

/**
 * Which shards may be read: a child only once its parent is done (so one key's changes apply in order
 * across a split), and which history is lost. `states` is the shards hash without the ARN field.
 */
export function planShards(shards: ShardInfo[], states: Record<string, string>): ShardPlan {
  const listed = new Set(shards.map((s) => s.id))
  const parents = new Set(shards.map((s) => s.parent).filter((p): p is string => p !== undefined))
  const done = (id: string) => states[id] === DONE
  const lost = Object.keys(states).filter((id) => !listed.has(id) && !done(id))
  const lostSet = new Set(lost)
  const ready: string[] = []
  for (const s of shards) {
    if (done(s.id)) continue
    const p = s.parent
    if (p === undefined || done(p)) ready.push(s.id)
    else if (!listed.has(p)) {
      // Never finished here and gone: a child that already has a state was started after its parent was done.
      if (states[s.id] === undefined && !lostSet.has(p)) {
        lost.push(p)
        lostSet.add(p)
      }
      if (states[s.id] !== undefined || lostSet.has(p)) ready.push(s.id)
    }
  }
  const prune = Object.keys(states).filter((id) => done(id) && !listed.has(id) && !parents.has(id))
  return { ready, lost, prune }
}
