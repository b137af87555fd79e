import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  name: string
  exports: Record<string, string | Record<string, Record<string, string>>>
}

/** The names each subpath must export, in both module systems. */
const EXPECTED: Record<string, string[]> = {
  '.': [
    'Cache',
    'SimpleCache',
    'ClusterCache',
    'isCachetteMessage',
    'FileSystemCache',
    'NullCache',
    'TieredCache',
    'makeTemplateFragmentKey',
    'ConfigError',
    'v8Serializer',
    'portableSerializer',
    'UnsupportedRuntimeError',
    'runtimeName',
    'MemoryBus',
    'guardBackend',
    'BackendTimeoutError',
    'CircuitOpenError',
    'observeAllCaches',
  ],
  './express': [
    'cached',
    'setCacheTimeout',
    'httpCache',
    'cacheFor',
    'cacheControl',
    'noStore',
    'vary',
    'validation',
    'preconditions',
  ],
  './fastify': [
    'cachette',
    'cached',
    'setCacheTimeout',
    'default',
    'httpCache',
    'cacheFor',
    'cacheControl',
    'noStore',
    'vary',
    'validation',
    'preconditions',
  ],
  './koa': [
    'cached',
    'setCacheTimeout',
    'httpCache',
    'cacheFor',
    'cacheControl',
    'noStore',
    'vary',
    'validation',
    'preconditions',
  ],
  './hono': [
    'cached',
    'setCacheTimeout',
    'httpCache',
    'cacheFor',
    'cacheControl',
    'noStore',
    'vary',
    'validation',
    'preconditions',
  ],
  './nestjs': [
    'CachetteModule',
    'CachetteInterceptor',
    'Cached',
    'Memoize',
    'setCacheTimeout',
    'httpCache',
    'cacheFor',
    'cacheControl',
    'noStore',
    'vary',
    'validation',
    'preconditions',
  ],
  './redis': ['RedisCache', 'RedisSentinelCache', 'RedisClusterCache', 'RedisBus', 'redisBus'],
  './memcached': [
    'MemcachedCache',
    'SASLMemcachedCache',
    'SpreadSASLMemcachedCache',
    'MemcachedAuthError',
    'MemcachedUnavailableError',
  ],
  './s3': ['S3Cache'],
  './cloudflare': ['CloudflareKVCache', 'KV_MIN_TTL_SECONDS', 'KV_MAX_KEY_BYTES'],
  './gcs': ['GoogleCloudStorageCache', 'GoogleCloudStorageError'],
  './keyv': ['KeyvCache', 'toKeyvStore'],
  './nunjucks': ['installCache', 'FragmentCacheExtension', 'renderAsync', 'renderStringAsync'],
  './http': [
    'HttpCache',
    'parseCacheControl',
    'evaluatePreconditions',
    'whyNotStorable',
    'freshnessLifetime',
  ],
  './testing': ['backendContract', 'sampleValues'],
  './prometheus': ['registerCacheMetrics', 'DEFAULT_DURATION_BUCKETS'],
  './otel': [
    'instrumentCache',
    'enableCacheTracing',
    'observeAllCaches',
    'operationChannel',
    'OPERATION_CHANNEL',
  ],
}

const subpaths = Object.keys(pkg.exports).filter((p) => p !== './package.json')

describe('the built package', () => {
  it('is built (npm run build) before this test runs', () => {
    assert.ok(existsSync(`${root}dist/index.js`), 'dist/index.js exists')
  })

  it('lists every subpath it is tested for, and every file the exports map names exists', () => {
    assert.deepEqual([...subpaths].sort(), Object.keys(EXPECTED).sort())
    for (const sub of subpaths) {
      const entry = pkg.exports[sub] as Record<string, Record<string, string>>
      for (const condition of ['import', 'require']) {
        for (const file of Object.values(entry[condition] ?? {})) {
          assert.ok(existsSync(`${root}${file}`), `${sub} ${condition}: ${file}`)
        }
      }
    }
  })

  for (const sub of subpaths) {
    const specifier = sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`
    const names = EXPECTED[sub] ?? []
    it(`${specifier} imports from ESM and requires from CommonJS with its exports`, async () => {
      // Self-reference by package name resolves through the exports map, as for a user.
      const esm = `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m)))`
      const cjs = `const m = require(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m)))`
      const fromEsm = JSON.parse(
        (await run(process.execPath, ['--input-type=module', '-e', esm], { cwd: root })).stdout,
      ) as string[]
      const fromCjs = JSON.parse(
        (await run(process.execPath, ['--input-type=commonjs', '-e', cjs], { cwd: root })).stdout,
      ) as string[]
      for (const name of names) {
        assert.ok(fromEsm.includes(name), `ESM ${specifier} exports ${name}`)
        assert.ok(fromCjs.includes(name), `CJS ${specifier} exports ${name}`)
      }
    })
  }

  it('the CommonJS build works end to end', async () => {
    const script = `
      const { Cache } = require('cachette')
      const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
      const m = cache.memoize(async (x) => x * 2)
      cache.set('k', new Map([[1, 2]])).then(() => cache.get('k')).then(async (v) => {
        console.log(JSON.stringify([v instanceof Map, await m(21)]))
      })`
    const { stdout } = await run(process.execPath, ['--input-type=commonjs', '-e', script], {
      cwd: root,
    })
    assert.deepEqual(JSON.parse(stdout), [true, 42])
  })

  it('subpaths share one core: cachette/koa teaches Cache.initApp to bind Koa apps (ESM and CJS)', async () => {
    const esm = `
      import { Cache } from 'cachette'
      import 'cachette/koa'
      import Koa from 'koa'
      const app = new Koa()
      new Cache({ CACHE_TYPE: 'SimpleCache' }).initApp(app)
      console.log(app.middleware.length)`
    const cjs = `
      const { Cache } = require('cachette')
      require('cachette/koa')
      const Koa = require('koa')
      const app = new Koa()
      new Cache({ CACHE_TYPE: 'SimpleCache' }).initApp(app)
      console.log(app.middleware.length)`
    const fromEsm = (await run(process.execPath, ['--input-type=module', '-e', esm], { cwd: root }))
      .stdout
    const fromCjs = (
      await run(process.execPath, ['--input-type=commonjs', '-e', cjs], { cwd: root })
    ).stdout
    assert.equal(fromEsm.trim(), '1')
    assert.equal(fromCjs.trim(), '1')
  })

  it('type declarations exist for both module systems', () => {
    for (const sub of subpaths) {
      const entry = pkg.exports[sub] as Record<string, Record<string, string>>
      assert.match(entry.import?.types ?? '', /\.d\.ts$/)
      assert.match(entry.require?.types ?? '', /\.d\.cts$/)
    }
  })
})
