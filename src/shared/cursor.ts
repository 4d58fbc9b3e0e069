import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from './errors.ts'

/** A DynamoDB LastEvaluatedKey: key attributes only, so S, N or B. */
export type PageKey = Record<string, AttributeValue>

type EncodedKey = Record<string, { S: string } | { N: string } | { B: string }>

/**
 * Opaque pagination cursors: the LastEvaluatedKey plus a digest of what the cursor is bound to
 * (table, index, query), signed with CURSOR_SECRET. A tampered cursor, or one presented to another
 * table or query, fails verification and is a 400 before anything reaches DynamoDB.
 */
export interface CursorCodec {
  encode(key: PageKey, binding: string): string
  /** Returns the key, or throws DC_ERR_INVALID_CURSOR. */
  decode(cursor: string, binding: string): PageKey
}

const bindingDigest = (binding: string) => createHash('sha256').update(binding).digest('base64url').slice(0, 16)

export function createCursorCodec(secret: string): CursorCodec {
  const sign = (payload: string) => createHmac('sha256', secret).update(payload).digest()

  return {
    encode(key, binding) {
      const encoded: EncodedKey = {}
      for (const [name, value] of Object.entries(key)) {
        if (value.S !== undefined) encoded[name] = { S: value.S }
        else if (value.N !== undefined) encoded[name] = { N: value.N }
        else if (value.B !== undefined) encoded[name] = { B: Buffer.from(value.B).toString('base64') }
        else throw new Error(`page key attribute ${name} is not S, N or B`)
      }
      const payload = Buffer.from(JSON.stringify({ k: encoded, b: bindingDigest(binding) })).toString('base64url')
      return `${payload}.${sign(payload).toString('base64url')}`
    },

    decode(cursor, binding) {
      const dot = cursor.indexOf('.')
      if (dot <= 0 || cursor.length > 8192) throw new errors.DC_ERR_INVALID_CURSOR()
      const payload = cursor.slice(0, dot)
      const signature = Buffer.from(cursor.slice(dot + 1), 'base64url')
      const expected = sign(payload)
      if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw new errors.DC_ERR_INVALID_CURSOR()
      let parsed: { k?: EncodedKey; b?: string }
      try {
        parsed = JSON.parse(Buffer.from(payload, 'base64url').toString())
      } catch {
        throw new errors.DC_ERR_INVALID_CURSOR()
      }
      if (parsed.b !== bindingDigest(binding) || typeof parsed.k !== 'object' || parsed.k === null) {
        throw new errors.DC_ERR_INVALID_CURSOR()
      }
      const key: PageKey = {}
      for (const [name, value] of Object.entries(parsed.k)) {
        if ('B' in value) key[name] = { B: new Uint8Array(Buffer.from(value.B, 'base64')) }
        else key[name] = value
      }
      return key
    },
  }
}
