/**
 * The Nunjucks `{% cache %}` tag (cachette/nunjucks) and `cache.fragment()`,
 * with real Nunjucks environments over the templates in test/fixtures/nunjucks.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import express from 'express'
import nunjucks from 'nunjucks'
import { RedisCache } from '../src/backends/redis/index.js'
import {
  Cache,
  type CacheBackend,
  FileSystemCache,
  InvalidTimeoutError,
  makeTemplateFragmentKey,
  NullCache,
  SimpleCache,
} from '../src/index.js'
import { installCache, renderAsync, renderStringAsync } from '../src/templates/nunjucks.js'
import {
  collectingLogger,
  DownBackend,
  fakeClock,
  Lifetimes,
  runWithoutPackage,
  silentLogger as silent,
} from './helpers.js'
import { startRedis } from './servers/redis.js'

const VIEWS = join(import.meta.dirname, 'fixtures', 'nunjucks')
const life = new Lifetimes()
after(() => life.stopAll())

/** A Nunjucks environment over the fixtures with the tag installed on `cache`. */
function environment(cache: Cache, autoescape = true): nunjucks.Environment {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(VIEWS), { autoescape })
  installCache(env, cache)
  return env
}

/** A render context whose `count()` says how many times fragment bodies ran. */
function context(extra: Record<string, unknown> = {}) {
  let n = 0
  return {
    title: 'Title',
    note: '<b>bold</b>',
    user: { id: 42, name: 'Ann <admin>' },
    items: [
      { id: 1, label: 'one & only' },
      { id: 2, label: '<two>' },
    ],
    page: 1,
    ttl: 30,
    count: () => ++n,
    runs: () => n,
    ...extra,
  }
}

function simple(clock = fakeClock()) {
  const backend = new SimpleCache({ clock: clock.now })
  return { cache: new Cache({ CACHE_TYPE: () => backend, logger: silent }), backend, clock }
}

describe('{% cache %}: grammar and keys', () => {
  test('timeout and name with vary values, and the default name (template path + line)', async () => {
    const { cache } = simple()
    const env = environment(cache)
    const ctx = context()
    const first = await renderAsync(env, 'page.njk', ctx)
    const second = await renderAsync(env, 'page.njk', ctx)
    assert.equal(ctx.runs(), 2, 'each body ran once')
    assert.equal(second, first, 'a cached fragment is byte-identical to the fresh render')
    assert.match(first, /<aside>Ann &lt;admin&gt; #1<\/aside>/)
    assert.equal(
      await cache.get(makeTemplateFragmentKey('sidebar', [42])),
      '<aside>Ann &lt;admin&gt; #1</aside>',
    )
    // As Flask-Caching: the template's path followed by the tag's line; the path relative
    // to the package root (no absolute directory in keys).
    const defaultKey = makeTemplateFragmentKey('test/fixtures/nunjucks/page.njk3')
    assert.equal(defaultKey, '_template_fragment_cache_test/fixtures/nunjucks/page.njk3')
    assert.equal(await cache.get(defaultKey), '<p>&lt;b&gt;bold&lt;/b&gt; #2</p>')
  })

  test('a string template has the name None plus the line, as in Flask-Caching', async () => {
    const { cache } = simple()
    const env = environment(cache)
    const ctx = context()
    await renderStringAsync(env, '{% cache 30 %}x{{ count() }}{% endcache %}', ctx)
    assert.equal(await cache.get(makeTemplateFragmentKey('None1')), 'x1')
  })

  test('app code invalidates a fragment with makeTemplateFragmentKey', async () => {
    const { cache } = simple()
    const env = environment(cache)
    const ctx = context()
    await renderAsync(env, 'page.njk', ctx)
    assert.equal(await cache.delete(makeTemplateFragmentKey('sidebar', [42])), true)
    const again = await renderAsync(env, 'page.njk', ctx)
    assert.match(again, /<aside>Ann &lt;admin&gt; #3<\/aside>/, 'only the sidebar re-rendered')
    assert.equal(ctx.runs(), 3)
  })

  test("timeouts: expressions (60*5, a variable), None never expires, 'del' deletes and renders uncached", async () => {
    const { cache, clock } = simple()
    const env = environment(cache)
    const ctx = context()
    await cache.set(makeTemplateFragmentKey('sidebar', [42]), 'stale sidebar')
    const out = await renderAsync(env, 'forms.njk', ctx)
    assert.match(out, /^F1\nD2\nE3\n\n$/)
    assert.equal(
      await cache.get(makeTemplateFragmentKey('sidebar', [42])),
      undefined,
      "'del' deleted it",
    )
    assert.equal(
      await cache.get(makeTemplateFragmentKey('empty')),
      '',
      'an empty fragment is cached',
    )
    // 60*5 on page.njk: stored for 300 s.
    await renderAsync(env, 'page.njk', ctx)
    const pageKey = makeTemplateFragmentKey('test/fixtures/nunjucks/page.njk3')
    clock.advance(299_000)
    assert.notEqual(await cache.get(pageKey), undefined)
    clock.advance(2_000)
    assert.equal(await cache.get(pageKey), undefined, 'expired after 60*5 seconds')
    assert.equal(await cache.get(makeTemplateFragmentKey('expr')), undefined, 'ttl = 30 s passed')
    clock.advance(365 * 86_400_000)
    assert.equal(await cache.get(makeTemplateFragmentKey('forever')), 'F1', 'None never expires')
    const again = await renderAsync(env, 'forms.njk', ctx)
    assert.match(again, /^F1\n/, 'the None fragment is still served from the cache')
  })
})

describe('{% cache %}: inside real templates', () => {
  test('extends and blocks, import and macros, include, autoescape: cached HTML equals a fresh render', async () => {
    const { cache } = simple()
    const env = environment(cache)
    const fresh = environment(
      new Cache({ CACHE_TYPE: () => new NullCache(), CACHE_NO_NULL_WARNING: true }),
    )
    const ctx = context()
    const first = await renderAsync(env, 'child.njk', ctx)
    const second = await renderAsync(env, 'child.njk', ctx)
    const uncached = await renderAsync(fresh, 'child.njk', context())
    assert.equal(ctx.runs(), 1)
    assert.equal(second, first)
    assert.equal(first, uncached, 'byte-identical to a render without caching')
    assert.match(first, /<title>Site<\/title>/)
    assert.match(first, /<li data-id="1">one &amp; only<\/li><li data-id="2">&lt;two&gt;<\/li>/)
    assert.match(first, /<footer>Tom &amp; Jerry — Ann &lt;admin&gt;<\/footer>/)
    const stored = (await cache.get(makeTemplateFragmentKey('listing', [1]))) as string
    assert.ok(first.includes(stored), 'the stored fragment is the rendered body, escaped once')
  })

  test('with autoescape off the fragment is stored and replayed as rendered', async () => {
    const { cache } = simple()
    const env = environment(cache, false)
    const ctx = context()
    const first = await renderAsync(env, 'page.njk', ctx)
    assert.match(first, /<p><b>bold<\/b> #2<\/p>/)
    assert.equal(await renderAsync(env, 'page.njk', ctx), first)
  })

  test('works over byte-oriented backends too (filesystem, Redis)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cachette-nunjucks-'))
    life.defer(async () => rmSync(dir, { recursive: true, force: true }))
    const redis = await startRedis()
    life.defer(() => redis.stop())
    const backends: CacheBackend[] = [
      new FileSystemCache({ dir, logger: silent }),
      new RedisCache({ port: redis.port, keyPrefix: 'nj:', logger: silent }),
    ]
    for (const backend of backends) {
      life.track(backend as RedisCache)
      const cache = new Cache({ CACHE_TYPE: () => backend, logger: silent })
      const env = environment(cache)
      const ctx = context()
      const first = await renderAsync(env, 'child.njk', ctx)
      assert.equal(await renderAsync(env, 'child.njk', ctx), first, backend.constructor.name)
      assert.equal(ctx.runs(), 1, backend.constructor.name)
    }
  })

  test('an Express app renders a page with cached fragments through res.render', async () => {
    const { cache } = simple()
    const app = express()
    const env = nunjucks.configure(VIEWS, { autoescape: true, express: app })
    installCache(env, cache)
    const ctx = context()
    app.get('/', (_req, res) => res.render('page.njk', ctx))
    const server = app.listen(0)
    await new Promise((resolve) => server.once('listening', resolve))
    const { port } = server.address() as { port: number }
    try {
      const a = await (await fetch(`http://127.0.0.1:${port}/`)).text()
      const b = await (await fetch(`http://127.0.0.1:${port}/`)).text()
      assert.equal(a, b)
      assert.equal(ctx.runs(), 2)
      assert.match(a, /<aside>Ann &lt;admin&gt; #1<\/aside>/)
    } finally {
      server.close()
    }
  })
})

describe('{% cache %}: errors', () => {
  test('a backend error renders the body uncached and logs; the page never breaks', async () => {
    for (const raiseErrors of [false, true]) {
      const logger = collectingLogger()
      const cache = new Cache({
        CACHE_TYPE: () => new DownBackend(),
        CACHE_RAISE_ERRORS: raiseErrors,
        logger,
      })
      const env = environment(cache)
      const ctx = context()
      const a = await renderAsync(env, 'page.njk', ctx)
      const b = await renderAsync(env, 'page.njk', ctx)
      assert.match(a, /<aside>Ann &lt;admin&gt; #1<\/aside>/)
      assert.match(b, /<aside>Ann &lt;admin&gt; #3<\/aside>/, 'rendered again: nothing was cached')
      assert.ok(
        logger.errors.some((e) => e.includes('backend down')),
        `logged (raiseErrors ${raiseErrors})`,
      )
    }
  })

  test('a tag without a timeout is a template error naming the template and line', async () => {
    const env = environment(simple().cache)
    await assert.rejects(renderAsync(env, 'bad-missing.njk', context()), (e: Error) => {
      assert.match(e.message, /bad-missing\.njk\) \[Line 2, Column \d+\]/)
      assert.match(e.message, /needs a timeout/)
      return true
    })
  })

  test('a literal timeout that is not a number, None or del fails at compile time', async () => {
    const env = environment(simple().cache)
    await assert.rejects(
      renderStringAsync(env, 'a\n\n{% cache "soon" %}x{% endcache %}', context()),
      /\[Line 3, Column \d+\][\s\S]*timeout must be a number of seconds, None \(never expires\) or 'del', got "soon"/,
    )
    await assert.rejects(
      renderStringAsync(env, '{% cache 5, a=1 %}x{% endcache %}', context()),
      /no keyword arguments/,
    )
  })

  test('a bad timeout or vary value at render time is a template error naming the template and line', async () => {
    const env = environment(simple().cache)
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ttl: 'soon', vary: 'v' }, /timeout must be .*got "soon"/],
      [{ ttl: -5, vary: 'v' }, /timeout must be .*got number/],
      [{ ttl: 5, vary: { id: 1 } }, /vary values must be strings or numbers, got object/],
      [{ ttl: 5, vary: undefined }, /vary values must be strings or numbers, got undefined/],
    ]
    for (const [extra, pattern] of cases) {
      await assert.rejects(renderAsync(env, 'bad-runtime.njk', context(extra)), (e: Error) => {
        assert.match(e.message, /bad-runtime\.njk\) \[Line 3, Column \d+\]/)
        assert.match(e.message, pattern)
        return true
      })
    }
  })

  test('without nunjucks installed, installCache names the package', async () => {
    const out = await runWithoutPackage(
      'nunjucks',
      `import { installCache } from './src/templates/nunjucks.ts'
       import { Cache } from './src/index.ts'
       try { installCache({ addExtension() {} }, new Cache({ CACHE_TYPE: 'SimpleCache' })); console.log('"installed"') }
       catch (e) { console.log(JSON.stringify([e.name, e.packageName])) }`,
    )
    assert.deepEqual(out, ['MissingDependencyError', 'nunjucks'])
  })
})

describe('cache.fragment(): the helper for engines without tags', () => {
  let cache: Cache
  let clock: ReturnType<typeof fakeClock>
  before(() => {
    ;({ cache, clock } = simple())
  })

  test('renders once, then serves the stored string, under the tag keys', async () => {
    let runs = 0
    const render = async () => `<nav>${++runs}</nav>`
    assert.equal(await cache.fragment('nav', 60, render, ['en']), '<nav>1</nav>')
    assert.equal(await cache.fragment('nav', 60, render, ['en']), '<nav>1</nav>')
    assert.equal(await cache.get('_template_fragment_cache_nav_en'), '<nav>1</nav>')
    clock.advance(61_000)
    assert.equal(await cache.fragment('nav', '1m', render, ['en']), '<nav>2</nav>')
    assert.equal(await cache.fragment('nav', 'del', render, ['en']), '<nav>3</nav>')
    assert.equal(await cache.get('_template_fragment_cache_nav_en'), undefined)
    assert.equal(
      await cache.fragment('plain', null, () => 'sync'),
      'sync',
      'a synchronous render works',
    )
  })

  test('bad input is thrown; render errors are thrown and nothing is stored', async () => {
    await assert.rejects(
      cache.fragment('x', -1, () => 'a'),
      InvalidTimeoutError,
    )
    await assert.rejects(
      cache.fragment('x', 5, () => 'a', [{} as never]),
      /vary_on values must be strings or numbers/,
    )
    await assert.rejects(
      cache.fragment('x', 5, () => 42 as never),
      TypeError,
    )
    await assert.rejects(
      cache.fragment('boom', 5, () => {
        throw new Error('render failed')
      }),
      /render failed/,
    )
    assert.equal(await cache.get('_template_fragment_cache_boom'), undefined)
  })

  test('a backend error renders uncached and logs', async () => {
    const logger = collectingLogger()
    const down = new Cache({
      CACHE_TYPE: () => new DownBackend(),
      CACHE_RAISE_ERRORS: true,
      logger,
    })
    let runs = 0
    assert.equal(await down.fragment('f', 5, () => `r${++runs}`), 'r1')
    assert.equal(await down.fragment('f', 5, () => `r${++runs}`), 'r2')
    assert.ok(logger.errors.length > 0)
  })
})
