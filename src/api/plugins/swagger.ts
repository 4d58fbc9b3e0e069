import { readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { ErrorResponse } from '../routes/schemas.ts'
import { RATE_LIMIT_EXEMPT } from './rate-limit.ts'

export const DOCS_PATH = '/docs'
/** package.json is three levels up from src/api/plugins/ and from dist/api/plugins/ alike. */
const PACKAGE = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
export const SECURITY_SCHEME = 'bearerAuth'

const DESCRIPTION = [
  'A caching read API for Amazon DynamoDB in front of Redis.',
  '',
  'Authenticate with `Authorization: Bearer <API key>`; each route names the scope it needs (read, write, export,',
  'admin; an admin key may call every route). Errors are JSON `{ statusCode, code, error, message }` with a stable',
  '`DC_ERR_...` code. Tables outside TABLES_ALLOW / TABLES_DENY answer 404 exactly as missing ones do.',
  '',
  'Requests are limited per API key (RATE_LIMIT_PER_MIN per minute, shared by every API process); answers carry',
  '`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, and a 429 carries `Retry-After`.',
  '/health and /ready are never limited.',
].join('\n')

const TAGS = [
  { name: 'reads', description: 'Cached reads of DynamoDB tables (scope read)' },
  { name: 'cache', description: 'Cache statistics and control' },
  { name: 'exports', description: 'Bulk exports to CSV or JSONL files (scope export)' },
  { name: 'batches', description: 'Batch writes with retries and idempotency (scope write)' },
  { name: 'writes', description: 'Writes of single items with write-through, and invalidation for other writers (scope write)' },
  { name: 'operations', description: 'Health, readiness and metrics' },
  { name: 'auth', description: 'What the presented API key may do (any valid key)' },
]

type JsonObject = { [key: string]: unknown }
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Turns JSON Schema as TypeBox writes it into OpenAPI 3.0 Schema Objects: `const` becomes a one-value
 * `enum`, unions of literals one `enum`, a `null` member of `anyOf` becomes `nullable`,
 * `patternProperties` becomes `additionalProperties`, and `$id` (not allowed there) goes.
 */
export function toOpenApi30(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOpenApi30)
  if (!isObject(schema)) return schema
  const out: JsonObject = {}
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$id' || key === '$schema') continue
    // Property names are data, not keywords: only their schemas are converted.
    if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, toOpenApi30(s)]))
    } else if (key === 'const') out.enum = [value]
    else if (key === 'patternProperties' && isObject(value)) {
      const [only] = Object.values(value)
      if (only !== undefined && out.additionalProperties === undefined) out.additionalProperties = toOpenApi30(only)
    } else if (key === 'type' && value === 'null') out.nullable = true
    else if (key === 'type' && Array.isArray(value) && value.includes('null')) {
      const rest = value.filter((t) => t !== 'null')
      if (rest.length === 1) out.type = rest[0]
      out.nullable = true
    } else out[key] = toOpenApi30(value)
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const members = out[key]
    if (!Array.isArray(members)) continue
    const nonNull = members.filter((m) => !(isObject(m) && m.nullable === true && Object.keys(m).length === 1))
    const nullable = nonNull.length !== members.length
    const literals = nonNull.every((m) => isObject(m) && Array.isArray(m.enum) && Object.keys(m).every((k) => k === 'enum' || k === 'type'))
    const types = new Set(nonNull.map((m) => (m as JsonObject).type))
    delete out[key]
    if (literals && types.size === 1) {
      const type = [...types][0]
      Object.assign(out, type === undefined ? {} : { type }, { enum: nonNull.flatMap((m) => (m as JsonObject).enum as unknown[]) })
    } else if (nonNull.length === 1 && isObject(nonNull[0])) Object.assign(out, nonNull[0])
    else out[key] = nonNull
    if (nullable) out.nullable = true
  }
  return out
}

/** The same document, every object's keys sorted: stable to diff, whatever order routes register in. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (!isObject(value)) return value
  const out: JsonObject = {}
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key])
  return out
}

const RETRY_AFTER = { description: 'Seconds to wait before trying again', schema: { type: 'integer' } }

/** Per operation: optional query parameters are those with a default, responses say what they are. */
function polishOperation(operation: JsonObject) {
  for (const parameter of (operation.parameters ?? []) as JsonObject[]) {
    if (parameter.in === 'query' && isObject(parameter.schema) && parameter.schema.default !== undefined) parameter.required = false
  }
  // A body that may be null (Type.Union([Body, Type.Null()])) may be left out altogether.
  const body = operation.requestBody as { required?: boolean; content?: Record<string, { schema?: JsonObject }> } | undefined
  if (body && Object.values(body.content ?? {}).every((c) => c.schema?.nullable === true)) body.required = false
  for (const [status, response] of Object.entries((operation.responses ?? {}) as Record<string, JsonObject>)) {
    if (response.description === 'Default Response' || response.description === 'Every error answer') {
      response.description = STATUS_CODES[Number(status)] ?? response.description
    }
    if (status === '304') delete response.content
    if (status === '429' || status === '503') response.headers = { ...(response.headers as object), 'Retry-After': RETRY_AFTER }
  }
}

/** Schemas every route shares, written once under components.schemas and referenced. */
const NAMED_SCHEMAS: Record<string, unknown> = { Error: ErrorResponse }

/** Replaces every copy of a named schema inside `value` by a $ref to it. */
function referenceNamed(value: unknown, named: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => referenceNamed(v, named))
  if (!isObject(value)) return value
  const name = named.get(JSON.stringify(sortKeys(value)))
  if (name) return { $ref: `#/components/schemas/${name}` }
  const out: JsonObject = {}
  for (const [key, v] of Object.entries(value)) out[key] = referenceNamed(v, named)
  return out
}

/** The OpenAPI document of an app, normalised: what /openapi.json serves and openapi/openapi.json holds. */
export function openapiDocument(app: FastifyInstance): JsonObject {
  const doc = toOpenApi30(app.swagger()) as JsonObject & { components: { schemas?: JsonObject }; paths: JsonObject }
  const named = new Map<string, string>()
  const schemas: JsonObject = {}
  for (const [name, schema] of Object.entries(NAMED_SCHEMAS)) {
    schemas[name] = toOpenApi30(schema)
    named.set(JSON.stringify(sortKeys(schemas[name])), name)
  }
  doc.paths = referenceNamed(doc.paths, named) as JsonObject
  doc.components.schemas = { ...doc.components.schemas, ...schemas }
  for (const path of Object.values(doc.paths) as JsonObject[]) {
    for (const operation of Object.values(path)) if (isObject(operation)) polishOperation(operation)
  }
  return sortKeys(doc) as JsonObject
}

/** The file form of the document: two-space JSON with a trailing newline. */
export const serializeDocument = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`

/**
 * Adds what routes share to their schema, so none can forget it: a 400 where input is validated, a
 * 429 where requests are rate limited, and for authenticated routes (`config.scope`) the bearer
 * security requirement, the scope in the description and the 401/403 answers.
 */
function documentRoute(route: RouteOptions) {
  if (!route.schema || route.schema.hide) return
  const schema = route.schema as {
    description?: string
    response?: Record<string, unknown>
    params?: unknown
    querystring?: unknown
    body?: unknown
    headers?: unknown
  }
  const validates = Boolean(schema.params || schema.querystring || schema.body || schema.headers) && !schema.response?.[400]
  const limited = !RATE_LIMIT_EXEMPT.has(route.url) && !schema.response?.[429]
  const response: Record<string, unknown> = {
    ...(validates ? { 400: ErrorResponse } : {}),
    ...schema.response,
    ...(limited ? { 429: ErrorResponse } : {}),
  }
  const scope = route.config?.scope
  if (!scope) {
    if (validates || limited) route.schema = { ...route.schema, response }
    return
  }
  const needs = scope === 'admin' ? 'an API key with the `admin` scope' : `an API key with the \`${scope}\` scope (or \`admin\`)`
  route.schema = {
    ...route.schema,
    description: [schema.description, `Requires ${needs}.`].filter(Boolean).join('\n\n'),
    security: [{ [SECURITY_SCHEME]: [] }],
    response: { ...response, 401: ErrorResponse, 403: ErrorResponse },
  }
}

/**
 * OpenAPI from the route schemas (@fastify/swagger), Swagger UI at /docs and the document at
 * /openapi.json. Register before any route: it learns routes as they are added.
 */
async function swaggerPlugin(app: FastifyInstance) {
  // Routes are fixed once the app is ready, so the document is built once.
  let document: JsonObject | undefined
  const current = () => (document ??= openapiDocument(app))
  app.addHook('onRoute', documentRoute)
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'dynacache', version: PACKAGE.version, description: DESCRIPTION },
      tags: TAGS,
      components: {
        securitySchemes: {
          [SECURITY_SCHEME]: { type: 'http', scheme: 'bearer', description: 'An API key from API_KEYS or API_KEYS_FILE' },
        },
      },
    },
    // Bull Board and the docs themselves are not part of the API.
    transform: ({ schema, url }) => ({
      schema: url.startsWith('/admin/') || url.startsWith(DOCS_PATH) ? { ...schema, hide: true } : schema,
      url,
    }),
  })
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    uiConfig: { docExpansion: 'list', deepLinking: true, validatorUrl: null } as Record<string, unknown>,
    transformSpecification: () => current(),
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => current())
}

export default fp(swaggerPlugin, { name: 'swagger' })
