import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/** Where `npm run build` puts the console (vite build): dist/console, from src/api/plugins or dist/api/plugins alike. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../dist/console/', import.meta.url))

/** The console's URL path. */
export const CONSOLE_PATH = '/console/'

/**
 * The console's own policy, stricter than the API's: scripts, styles and requests from this origin only,
 * no inline script or style element, nothing framed, no plugin. Its page talks to this API and nothing else.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ')

/** Hashed file names (Vite's `name-<hash>.ext` under assets/) never change content: cache them for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable'

export interface ConsoleOptions {
  /** The built console (index.html and assets/); CONSOLE_DIR by default. */
  root?: string
}

/**
 * Serves the web console (console/, built by Vite) under /console/. The API works without it: when the
 * build is absent it logs one line and adds no route. Route plugin: encapsulated, not fastify-plugin.
 */
export default async function consoleUi(app: FastifyInstance, opts: ConsoleOptions) {
  const root = opts.root ?? CONSOLE_DIR
  if (!existsSync(join(root, 'index.html'))) {
    app.log.info({ msg: 'console.absent', root, hint: 'npm run build builds it' })
    return
  }
  app.addHook('onSend', async (_request, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '')
    if (type.startsWith('text/html')) reply.header('content-security-policy', CONSOLE_CSP)
    return payload
  })
  await app.register(fastifyStatic, {
    root,
    prefix: CONSOLE_PATH,
    // /console answers the page too (the router ignores trailing slashes).
    redirect: false,
    index: ['index.html'],
    dotfiles: 'ignore',
    cacheControl: false,
    // The build writes .br and .gz beside each asset: sent as they are to clients that accept them.
    preCompressed: true,
    // The files are listed once at start-up: no file-system lookup for a path that is not an asset.
    wildcard: false,
    setHeaders: (reply, path) => {
      reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? IMMUTABLE : 'no-cache')
    },
    schemaHide: true,
    decorateReply: false,
  })
}
