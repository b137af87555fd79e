/**
 * The built package through a bundler: esbuild, with tree shaking, bundles
 * small apps that use cachette by its package name, and the bundles run in
 * child processes. What is checked is what a bundler may delete: the app
 * binders that `initApp` relies on (registered when `cachette/koa`,
 * `cachette/hono` and `cachette/fastify` load, and by the `cachette` entry for
 * Express, together with `cache.cached()`), which package.json's
 * "sideEffects" must declare.
 *
 * The package is installed as `node_modules/cachette` in a temporary
 * directory: its package.json and a link to dist/ (resolved without following
 * the link, so the package.json is the one beside it). A second copy with
 * `"sideEffects": false` is the control: it shows that a dropped
 * registration is caught, and that an app which uses the adapter's
 * middleware binds anyway.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { build } from 'esbuild'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>

/** Framework packages stay external (linked into the temporary node_modules); cachette is bundled. */
const EXTERNAL = ['koa', 'hono', 'express', 'fastify', 'fastify-plugin']

let dir = ''

/** A directory with `node_modules/cachette` (this package.json, or `override` merged in) and the frameworks. */
function project(name: string, override: Record<string, unknown> = {}): string {
  const base = join(dir, name)
  const modules = join(base, 'node_modules')
  mkdirSync(join(modules, 'cachette'), { recursive: true })
  writeFileSync(join(modules, 'cachette', 'package.json'), JSON.stringify({ ...pkg, ...override }))
  symlinkSync(join(root, 'dist'), join(modules, 'cachette', 'dist'), 'dir')
  for (const external of EXTERNAL) {
    symlinkSync(join(root, 'node_modules', external), join(modules, external), 'dir')
  }
  return base
}

/**
 * Two apps on one Cache with different backends (A: SimpleCache, B:
 * FileSystemCache), each holding its own name under `who`; B is initialised
 * last, so a request of A that does not run in A's context reads `b`.
 * `setup(name, config)` returns an object with `request()`: the body of a
 * request to a route that is not cached (so only `initApp`'s binding gives
 * it its app), as a string.
 */
const PRELUDE = `
import { Cache } from 'cachette'
const warnings = []
const logger = { warn: (m) => warnings.push(String(m)), error: () => {} }
const cache = new Cache({ logger, CACHE_NO_NULL_WARNING: true })
const configs = {
  a: { CACHE_TYPE: 'SimpleCache', CACHE_KEY_PREFIX: 'a:' },
  b: { CACHE_TYPE: 'FileSystemCache', CACHE_DIR: process.env.CACHE_DIR_B, CACHE_KEY_PREFIX: 'b:' },
}
async function main(setup) {
  const apps = {}
  for (const name of ['a', 'b']) apps[name] = await setup(name, configs[name])
  for (const name of ['a', 'b']) await cache.runWithApp(apps[name].app, () => cache.set('who', name))
  const seen = {}
  for (const name of ['a', 'b']) seen[name] = await apps[name].request()
  const extra = apps.a.extra ? await apps.a.extra() : undefined
  await Promise.all(Object.values(apps).map((a) => a.close?.()))
  console.log(JSON.stringify({ seen, warnings, extra }))
}
`

const KOA_SERVER = `
import { createServer } from 'node:http'
async function serve(handler) {
  const server = createServer(handler)
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = 'http://127.0.0.1:' + server.address().port
  return { url, close: () => new Promise((r) => server.close(r)) }
}
`

const APPS: Record<string, string> = {
  // README: import 'cachette/koa' before initApp.
  'koa-import': `
import 'cachette/koa'
import Koa from 'koa'
${PRELUDE}${KOA_SERVER}
await main(async (name, config) => {
  const app = new Koa()
  cache.initApp(app, config)
  app.use(async (ctx) => { ctx.body = String(await cache.get('who')) })
  const server = await serve(app.callback())
  return { app, request: async () => (await fetch(server.url)).text(), close: server.close }
})`,
  // An app that uses cached() on some routes: the module is in the bundle because it is used.
  'koa-cached': `
import { cached } from 'cachette/koa'
import Koa from 'koa'
${PRELUDE}${KOA_SERVER}
await main(async (name, config) => {
  const app = new Koa()
  cache.initApp(app, config)
  const page = cached(cache, { timeout: 60 })
  app.use((ctx, next) => (ctx.path === '/cached' ? page(ctx, next) : next()))
  app.use(async (ctx) => { ctx.body = String(await cache.get('who')) })
  const server = await serve(app.callback())
  return { app, request: async () => (await fetch(server.url)).text(), close: server.close }
})`,
  'hono-import': `
import 'cachette/hono'
import { Hono } from 'hono'
${PRELUDE}
await main(async (name, config) => {
  const app = new Hono()
  cache.initApp(app, config)
  app.get('/', async (c) => c.text(String(await cache.get('who'))))
  return { app, request: async () => (await app.request('/')).text() }
})`,
  'hono-cached': `
import { cached } from 'cachette/hono'
import { Hono } from 'hono'
${PRELUDE}
await main(async (name, config) => {
  const app = new Hono()
  cache.initApp(app, config)
  app.get('/cached', cached(cache, { timeout: 60 }), (c) => c.text('page'))
  app.get('/', async (c) => c.text(String(await cache.get('who'))))
  return { app, request: async () => (await app.request('/')).text() }
})`,
  'fastify-import': `
import 'cachette/fastify'
import Fastify from 'fastify'
${PRELUDE}
await main(async (name, config) => {
  const app = Fastify()
  cache.initApp(app, config)
  app.get('/', async () => String(await cache.get('who')))
  return { app, request: async () => (await app.inject('/')).body, close: () => app.close() }
})`,
  // Only the root entry: Express apps bind, and cache.cached() is the Express middleware.
  express: `
import express from 'express'
${PRELUDE}${KOA_SERVER}
let renders = 0
await main(async (name, config) => {
  const app = express()
  cache.initApp(app, config)
  app.get('/cached', cache.cached({ timeout: 60 }), (_req, res) => { renders++; res.send('page ' + renders) })
  app.get('/', async (_req, res) => { res.send(String(await cache.get('who'))) })
  const server = await serve(app)
  const extra = async () => [await (await fetch(server.url + '/cached')).text(), await (await fetch(server.url + '/cached')).text()]
  return { app, request: async () => (await fetch(server.url)).text(), close: server.close, extra }
})`,
}

interface Outcome {
  seen: { a: string; b: string }
  warnings: string[]
  extra?: unknown
}

/** Bundles `source` against the package in `base`, runs the bundle, returns what it printed. */
async function bundleAndRun(base: string, name: string, source: string): Promise<Outcome> {
  const entry = join(base, `${name}.mjs`)
  writeFileSync(entry, source)
  const outfile = join(base, `${name}.bundle.mjs`)
  await build({
    entryPoints: [entry],
    outfile,
    absWorkingDir: base,
    bundle: true,
    treeShaking: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // node_modules/cachette/dist is a link: keep its path, so cachette's package.json is the one beside it.
    preserveSymlinks: true,
    external: EXTERNAL.flatMap((e) => [e, `${e}/*`]),
    logLevel: 'silent',
  })
  const cacheDir = join(base, `${name}-fs-cache`)
  const { stdout } = await run(process.execPath, [outfile], {
    cwd: base,
    env: { ...process.env, CACHE_DIR_B: cacheDir },
  })
  return JSON.parse(stdout) as Outcome
}

describe('the built package, bundled with esbuild (tree shaking on)', () => {
  before(() => {
    assert.ok(existsSync(join(root, 'dist', 'index.js')), 'npm run build before this test')
    dir = mkdtempSync(join(tmpdir(), 'cachette-bundle-'))
  })
  after(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  it('package.json declares exactly the built files that register at import time', () => {
    const declared = new Set(pkg.sideEffects as string[])
    const registering = ['index', 'fastify', 'koa', 'hono', 'nestjs'].flatMap((n) => [
      `./dist/${n}.js`,
      `./dist/${n}.cjs`,
    ])
    assert.deepEqual([...declared].sort(), registering.sort())
    for (const file of registering) {
      const text = readFileSync(join(root, file), 'utf8')
      assert.match(text, /registerAppBinder/, `${file} registers an app binder`)
    }
  })

  describe('with the package as published', () => {
    let base = ''
    before(() => {
      base = project('published')
    })
    for (const name of Object.keys(APPS)) {
      it(`${name}: each app's requests use its own backend, without a warning`, async () => {
        const out = await bundleAndRun(base, name, APPS[name] as string)
        assert.deepEqual(out.seen, { a: 'a', b: 'b' }, JSON.stringify(out))
        assert.deepEqual(out.warnings, [])
        if (name === 'express') assert.deepEqual(out.extra, ['page 1', 'page 1'])
      })
    }
  })

  describe('control: the same package claiming "sideEffects": false', () => {
    let base = ''
    before(() => {
      base = project('no-side-effects', { sideEffects: false })
    })
    it("a bare import 'cachette/koa' is dropped: initApp cannot bind, and warns", async () => {
      const out = await bundleAndRun(base, 'koa-import', APPS['koa-import'] as string)
      assert.deepEqual(out.seen, { a: 'b', b: 'b' })
      assert.equal(out.warnings.length, 1)
      assert.match(out.warnings[0] as string, /import 'cachette\/fastify', 'cachette\/koa'/)
    })
    it("a bare import 'cachette/hono' is dropped as well", async () => {
      const out = await bundleAndRun(base, 'hono-import', APPS['hono-import'] as string)
      assert.deepEqual(out.seen, { a: 'b', b: 'b' })
    })
    for (const name of ['koa-cached', 'hono-cached']) {
      it(`${name}: an app using the adapter's middleware binds anyway`, async () => {
        const out = await bundleAndRun(base, name, APPS[name] as string)
        assert.deepEqual(out.seen, { a: 'a', b: 'b' })
        assert.deepEqual(out.warnings, [])
      })
    }
  })
})
