import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { defineConfig, type Plugin } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/** Writes .br and .gz beside each script and stylesheet, which @fastify/static sends as they are (preCompressed). */
function precompress(): Plugin {
  let outDir = ''
  return {
    name: 'dynacache-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir
    },
    closeBundle() {
      const assets = join(outDir, 'assets')
      for (const name of readdirSync(assets).filter((n) => /\.(js|css)$/.test(n))) {
        const body = readFileSync(join(assets, name))
        writeFileSync(join(assets, `${name}.br`), brotliCompressSync(body))
        writeFileSync(join(assets, `${name}.gz`), gzipSync(body, { level: 9 }))
      }
    },
  }
}

/**
 * The web console: Preact + TypeScript, bundled by Vite into dist/console, which the API serves under
 * /console/ (src/api/plugins/console.ts). JSX goes through Vite's own transformer (oxc), so no plugin.
 */
export default defineConfig({
  root: here('.'),
  base: '/console/',
  publicDir: here('public'),
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  plugins: [precompress()],
  build: {
    outDir: here('../dist/console'),
    emptyOutDir: true,
    // Every asset is a file of its own: the page's policy allows no inline script, style or data: font.
    assetsInlineLimit: 0,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { proxy: { '^/(tables|cache|exports|batches|auth)': 'http://127.0.0.1:3000' } },
})
