import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'

// Runs in a fresh process: the other tests import every adapter, which registers its binder.
describe('initApp on an app whose adapter is not loaded', () => {
  it('warns once, naming the module to import; a plain object does not warn', () => {
    const script = `
      import { Cache } from './src/index.ts'
      import Koa from 'koa'
      const warnings = []
      const logger = { warn: (m) => warnings.push(m), error: () => {} }
      const cache = new Cache({ CACHE_TYPE: 'SimpleCache', logger })
      cache.initApp({})
      cache.initApp(new Koa(), { logger })
      console.log(JSON.stringify(warnings))`
    const out = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(out.status, 0, out.stderr)
    const warnings = JSON.parse(out.stdout) as string[]
    assert.equal(warnings.length, 1)
    assert.match(
      warnings[0] as string,
      /import 'cachette\/fastify', 'cachette\/koa' or 'cachette\/hono'/,
    )
  })
})
