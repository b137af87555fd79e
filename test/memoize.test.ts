import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Cache, SimpleCache } from '../src/index.js'
import { collectingLogger, DownBackend, fakeClock } from './helpers.js'

function counter<A extends unknown[], R>(fn: (...args: A) => R) {
  const f = (...args: A): R => {
    f.calls++
    return fn(...args)
  }
  f.calls = 0
  return f
}

describe('memoize: results by arguments', () => {
  it('computes once per distinct argument list', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const add = counter((a: number, b: number) => a + b)
    const m = cache.memoize(add, { timeout: 50 })
    assert.equal(await m(1, 2), 3)
    assert.equal(await m(1, 2), 3)
    assert.equal(await m(2, 1), 3)
    assert.equal(add.calls, 2)
  })

  it('normalises arguments: trailing undefined, object key order, Set/Map order', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = counter((..._args: unknown[]) => 'r')
    const m = cache.memoize(f)
    await m(1)
    await m(1, undefined)
    await m({ a: 1, b: [2] })
    await m({ b: [2], a: 1 })
    await m(new Set([1, 2]))
    await m(new Set([2, 1]))
    assert.equal(f.calls, 3)
  })

  it('never confuses values of different types', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = counter((x: unknown) => typeof x)
    const m = cache.memoize(f)
    const args = [
      1,
      '1',
      0,
      null,
      false,
      '',
      1n,
      [1],
      { 0: 1 },
      new Date(1),
      Buffer.from([1]),
      new Uint8Array([1]),
      Number.NaN,
      -0,
    ]
    for (const a of args) await m(a)
    assert.equal(f.calls, args.length)
    for (const a of args) await m(a)
    assert.equal(f.calls, args.length)
  })

  it('two different functions never share entries, even with the same name and body', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const makeLoader = (table: string) =>
      cache.memoize(async function load(id: number) {
        return `${table}:${id}`
      })
    const users = makeLoader('users')
    const posts = cache.memoize(async function load(id: number) {
      return `posts:${id}`
    })
    assert.equal(await users(1), 'users:1')
    assert.equal(await posts(1), 'posts:1')
    assert.notEqual(users.memoizeName, posts.memoizeName)
  })

  it('keys: a 22-character function prefix, a 6-character version, then the arguments or their hash', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const m = cache.memoize((x: number | string) => x)
    const key = await m.makeCacheKey(5)
    assert.match(key, /^[\w-]{22}[A-Za-z0-9+/]{6}:\(n:5\)$/)
    const long = await m.makeCacheKey('x'.repeat(200))
    assert.match(long, /^[\w-]{22}[A-Za-z0-9+/]{6}#[\w-]{22}$/)
    assert.equal(long.slice(0, 28), key.slice(0, 28), 'one function, one prefix and version')
    await m(5)
    assert.equal(await cache.get(key), 5)
    assert.equal(typeof (await cache.get(`${m.memoizeName}_memver`)), 'string')
  })

  it('makeName replaces the default name', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let given = ''
    const m = cache.memoize((x: number) => x, {
      makeName: (name) => {
        given = name
        return 'users.load'
      },
    })
    assert.equal(m.memoizeName, 'users.load')
    assert.match(given, /^test\/memoize\.test\.ts:\d+:\d+:/)
    await m(1)
    assert.equal(typeof (await cache.get('users.load_memver')), 'string')
  })

  it('functions with the same makeName share entries unless sourceCheck tells them apart', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const a = cache.memoize(() => 'a', { makeName: () => 'shared' })
    const b = cache.memoize(() => 'b', { makeName: () => 'shared' })
    await a()
    assert.equal(await b(), 'a')
    const c = cache.memoize(() => 'c', { makeName: () => 'checked', sourceCheck: true })
    const d = cache.memoize(() => 'd', { makeName: () => 'checked', sourceCheck: true })
    await c()
    assert.equal(await d(), 'd')
  })

  it('hashMethod changes the key', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const sha = cache.memoize((x: number) => x, { makeName: () => 'h' })
    const md5 = cache.memoize((x: number) => x, { makeName: () => 'h', hashMethod: 'md5' })
    assert.notEqual(
      (await sha.makeCacheKey(1)).slice(0, 16),
      (await md5.makeCacheKey(1)).slice(0, 16),
    )
  })

  it('a sync function becomes async; a thrown error is never cached and reaches the caller', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let fail = true
    const f = counter(() => {
      if (fail) throw new Error('boom')
      return 'ok'
    })
    const m = cache.memoize(f)
    await assert.rejects(m(), /boom/)
    fail = false
    assert.equal(await m(), 'ok')
    assert.equal(await m(), 'ok')
    assert.equal(f.calls, 2)
  })

  it('entries expire after the timeout; cacheTimeout is readable and writable', async () => {
    const clock = fakeClock()
    const cache = new Cache({ CACHE_TYPE: () => new SimpleCache({ clock: clock.now }) })
    const f = counter((x: number) => x)
    const m = cache.memoize(f, { timeout: '1m' })
    assert.equal(m.cacheTimeout, 60)
    await m(1)
    clock.advance(59_000)
    await m(1)
    assert.equal(f.calls, 1)
    clock.advance(2000)
    await m(1)
    assert.equal(f.calls, 2)
    m.cacheTimeout = 5
    await m(2)
    clock.advance(6000)
    await m(2)
    assert.equal(f.calls, 4)
    assert.throws(() => {
      m.cacheTimeout = -1
    }, TypeError)
  })

  it('version keys live as long as the entries (Flask-Caching #531 stays fixed)', async () => {
    const clock = fakeClock()
    const backend = new SimpleCache({ clock: clock.now })
    const cache = new Cache({ CACHE_TYPE: () => backend })
    const m = cache.memoize((x: number) => x, { timeout: 100, makeName: () => 'v' })
    await m(1)
    clock.advance(99_000)
    assert.equal(await backend.has('v_memver'), true)
    clock.advance(2000)
    assert.equal(await backend.has('v_memver'), false)
  })

  it('uncached is the original function', () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = (x: number) => x
    assert.equal(cache.memoize(f).uncached, f)
  })
})

describe('memoize: options', () => {
  it('unless bypasses only on exactly true and receives (fn, ...args)', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = counter((x: number) => x)
    let answer: unknown = true
    const seen: unknown[][] = []
    const m = cache.memoize(f, {
      unless: (fn, ...args) => {
        seen.push([fn, ...args])
        return answer as boolean
      },
    })
    await m(1)
    await m(1)
    assert.equal(f.calls, 2)
    assert.deepEqual(seen[0], [f, 1])
    answer = 1
    await m(1)
    await m(1)
    assert.equal(f.calls, 3)
  })

  it('forcedUpdate skips the read but writes the fresh value', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let value = 'a'
    let force = false
    const m = cache.memoize(() => value, { forcedUpdate: () => force })
    assert.equal(await m(), 'a')
    value = 'b'
    assert.equal(await m(), 'a')
    force = true
    assert.equal(await m(), 'b')
    force = false
    assert.equal(await m(), 'b')
  })

  it('isStale sees (value, ...args) on hits only; true recomputes', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const seen: unknown[][] = []
    let n = 0
    const m = cache.memoize(async (x: number) => ({ x, n: ++n }), {
      isStale: (value, ...args) => {
        seen.push([value, ...args])
        return (value as { n: number }).n < 2
      },
    })
    await m(7)
    assert.equal(seen.length, 0)
    assert.deepEqual(await m(7), { x: 7, n: 2 })
    assert.deepEqual(seen[0], [{ x: 7, n: 1 }, 7])
    assert.deepEqual(await m(7), { x: 7, n: 2 })
  })

  it('responseFilter keeps falsy-filtered results out of the cache but returns them', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = counter((x: number) => ({ ok: x > 0 }))
    const m = cache.memoize(f, { responseFilter: (r) => (r as { ok: boolean }).ok })
    assert.deepEqual(await m(-1), { ok: false })
    await m(-1)
    await m(1)
    await m(1)
    assert.equal(f.calls, 3)
  })

  it('null results are cached only with cacheNone; undefined never', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = counter((): null => null)
    const plain = cache.memoize(f)
    await plain()
    await plain()
    assert.equal(f.calls, 2)
    const g = counter((): null => null)
    const withNone = cache.memoize(g, { cacheNone: true })
    assert.equal(await withNone(), null)
    assert.equal(await withNone(), null)
    assert.equal(g.calls, 1)
    const h = counter((): undefined => undefined)
    const undef = cache.memoize(h, { cacheNone: true })
    await undef()
    await undef()
    assert.equal(h.calls, 2)
  })

  it('argsToIgnore by name and by position', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    const byName = cache.memoize(
      function find(id: number, _trace: string, _log?: boolean) {
        calls++
        return id
      },
      { argsToIgnore: ['_trace'] },
    )
    await byName(1, 'a')
    await byName(1, 'b')
    assert.equal(calls, 1)
    const byIndex = cache.memoize(
      (id: number, _trace: string) => {
        calls++
        return id
      },
      { argsToIgnore: [1] },
    )
    await byIndex(1, 'a')
    await byIndex(1, 'b')
    assert.equal(calls, 2)
    assert.throws(
      () => cache.memoize((id: number) => id, { argsToIgnore: ['nope'] }),
      /argsToIgnore names "nope", but the function has parameters \(id\)/,
    )
  })

  it('rejects unknown options, non-function callbacks and bad timeouts at set-up', () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    assert.throws(() => cache.memoize(() => 1, { ttl: 5 } as never), /unknown option "ttl"/)
    assert.throws(
      () => cache.memoize(() => 1, { unless: true } as never),
      /unless must be a function/,
    )
    assert.throws(() => cache.memoize(() => 1, { timeout: -3 }), TypeError)
    assert.throws(() => cache.memoize(() => 1, { hashMethod: 'nope' }), /hashMethod/)
  })
})

describe('memoize: invalidation', () => {
  it('deleteMemoized(fn) drops every result; deleteMemoized(fn, ...args) drops one', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const f = counter((x: number, y: number = 0) => x + y)
    const m = cache.memoize(f)
    await m(1)
    await m(2, 3)
    await cache.deleteMemoized(m, 2, 3)
    await m(1)
    await m(2, 3)
    assert.equal(f.calls, 3)
    await cache.deleteMemoized(m)
    await m(1)
    await m(2, 3)
    assert.equal(f.calls, 5)
    await m.deleteMemoized()
    await m(1)
    assert.equal(f.calls, 6)
  })

  it('deleteMemoizedVerhash removes the version key', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const m = cache.memoize((x: number) => x, { makeName: () => 'vh' })
    await m(1)
    assert.equal(await cache.has('vh_memver'), true)
    await cache.deleteMemoizedVerhash(m)
    assert.equal(await cache.has('vh_memver'), false)
  })

  it('rejects what is not a memoized function', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    await assert.rejects(cache.deleteMemoized('users.load' as never), /not supported/)
    await assert.rejects(
      cache.deleteMemoized(() => 1),
      /not a memoized function/,
    )
    await assert.rejects(cache.deleteMemoizedVerhash(42 as never), TypeError)
  })
})

const shared = new Cache({ CACHE_TYPE: 'SimpleCache' })

class Person {
  static cache = shared
  calls = 0
  constructor(public name: string) {}
  @shared.memoize({ timeout: 50 })
  async hasRole(role: string): Promise<string> {
    this.calls++
    return `${this.name}:${role}`
  }
  static staticCalls = 0
  @shared.memoize()
  static async count(x: number): Promise<number> {
    Person.staticCalls++
    return x
  }
}

class Row {
  calls = 0
  constructor(public id: number) {}
  cachingId(): string {
    return `row-${this.id}`
  }
  @shared.memoize()
  async load(): Promise<number> {
    this.calls++
    return this.id
  }
}

describe('memoize: methods (standard decorators)', () => {
  it('caches per instance; two instances with equal fields do not share (the repr leak)', async () => {
    const a = new Person('Ann')
    const b = new Person('Ann')
    assert.equal(await a.hasRole('admin'), 'Ann:admin')
    await a.hasRole('admin')
    await b.hasRole('admin')
    assert.equal(a.calls, 1)
    assert.equal(b.calls, 1)
  })

  it('cachingId() makes instances of the same identity share', async () => {
    const a = new Row(7)
    const b = new Row(7)
    await a.load()
    await b.load()
    assert.equal(a.calls + b.calls, 1)
  })

  it('cachingId() values of different types are different identities (1, "1", 1n)', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    class Keyed {
      constructor(readonly id: unknown) {}
      cachingId(): unknown {
        return this.id
      }
      async load(): Promise<string> {
        calls++
        return `${typeof this.id}:${String(this.id)}`
      }
    }
    const d = Object.getOwnPropertyDescriptor(Keyed.prototype, 'load') as PropertyDescriptor
    cache.memoize()(Keyed.prototype, 'load', d)
    Object.defineProperty(Keyed.prototype, 'load', d)
    const ids = [1, '1', 1n, Symbol('s'), Symbol('s')]
    const results = []
    for (const id of ids) results.push(await new Keyed(id).load())
    assert.deepEqual(results, [
      'number:1',
      'string:1',
      'bigint:1',
      'symbol:Symbol(s)',
      'symbol:Symbol(s)',
    ])
    assert.equal(calls, 5, 'no two of them shared an entry')
    await new Keyed('1').load()
    assert.equal(calls, 5, 'the same id shares')
  })

  it('deleteMemoized(obj.method.bind(obj)) invalidates one instance only', async () => {
    const a = new Person('A')
    const b = new Person('B')
    await a.hasRole('x')
    await b.hasRole('x')
    await Person.cache.deleteMemoized(a.hasRole.bind(a))
    await a.hasRole('x')
    await b.hasRole('x')
    assert.equal(a.calls, 2)
    assert.equal(b.calls, 1)
  })

  it('deleteMemoized(Cls.prototype.method) invalidates every instance', async () => {
    const a = new Person('C')
    const b = new Person('D')
    await a.hasRole('x')
    await b.hasRole('x')
    await Person.cache.deleteMemoized(Person.prototype.hasRole)
    await a.hasRole('x')
    await b.hasRole('x')
    assert.equal(a.calls + b.calls, 4)
  })

  it('deleteMemoized(Cls.prototype.method, obj, ...args) and (bound, ...args) drop one entry', async () => {
    const a = new Person('E')
    await a.hasRole('x')
    await a.hasRole('y')
    await Person.cache.deleteMemoized(Person.prototype.hasRole, a, 'x')
    await a.hasRole('x')
    await a.hasRole('y')
    assert.equal(a.calls, 3)
    await Person.cache.deleteMemoized(a.hasRole.bind(a), 'y')
    await a.hasRole('y')
    assert.equal(a.calls, 4)
    await assert.rejects(
      Person.cache.deleteMemoized(Person.prototype.hasRole, 'x'),
      /pass the instance first/,
    )
  })

  it('static methods are memoized per class', async () => {
    await Person.count(3)
    await Person.count(3)
    assert.equal(Person.staticCalls, 1)
  })

  it('method keys carry the instance version after the function version', async () => {
    const a = new Person('F')
    const key = await (
      a.hasRole as unknown as { makeCacheKey(...args: unknown[]): Promise<string> }
    ).makeCacheKey.call(a, 'x')
    assert.match(key, /^[\w-]{22}[A-Za-z0-9+/]{12}:\d+:.+\("x"\)$/)
  })
})

describe('memoize: legacy experimentalDecorators', () => {
  it('works on a class compiled by TypeScript with experimentalDecorators', async () => {
    const ts = await import('typescript')
    const source = `
      import { Cache } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)}
      export const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
      export class Service {
        calls = 0
        @cache.memoize({ timeout: 50 })
        async find(id: number): Promise<string> { this.calls++; return 'item' + id }
      }`
    const out = ts.transpileModule(source, {
      compilerOptions: {
        experimentalDecorators: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
      },
    }).outputText
    assert.match(out, /__decorate/, 'compiled with legacy decorators')
    const { mkdtemp, writeFile } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = await mkdtemp(join(tmpdir(), 'cachette-legacy-'))
    const file = join(dir, 'service.mjs')
    await writeFile(file, out)
    const mod = (await import(file)) as {
      cache: Cache
      Service: new () => { calls: number; find(id: number): Promise<string> }
    }
    const s = new mod.Service()
    assert.equal(await s.find(1), 'item1')
    assert.equal(await s.find(1), 'item1')
    assert.equal(s.calls, 1)
    await mod.cache.deleteMemoized(s.find.bind(s))
    await s.find(1)
    assert.equal(s.calls, 2)
  })
})

describe('memoize: a failing backend', () => {
  it('runs the function uncached and logs once', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: () => new DownBackend(), logger })
    const f = counter((x: number) => x * 2)
    const m = cache.memoize(f)
    for (let i = 0; i < 5; i++) assert.equal(await m(2), 4)
    assert.equal(f.calls, 5)
    assert.equal(logger.errors.length, 1)
    assert.match(logger.errors[0] as string, /backend down/)
  })

  it('raises with CACHE_RAISE_ERRORS', async () => {
    const cache = new Cache({ CACHE_TYPE: () => new DownBackend(), CACHE_RAISE_ERRORS: true })
    await assert.rejects(cache.memoize((x: number) => x)(1), /backend down/)
  })

  it('an unstorable result is returned and logged, not thrown', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', logger })
    const fn = () => 1
    const m = cache.memoize(() => ({ fn }))
    assert.equal((await m()).fn, fn)
    assert.equal(logger.errors.length, 1)
  })
})

describe('memoize: one Cache, several apps', () => {
  it('uses the backend of the app whose request is running', async () => {
    const cache = new Cache()
    const app1 = {}
    const app2 = {}
    cache.initApp(app1, { CACHE_TYPE: 'SimpleCache' })
    cache.initApp(app2, { CACHE_TYPE: 'SimpleCache' })
    let n = 0
    const m = cache.memoize(() => ++n)
    assert.equal(await cache.runWithApp(app1, () => m()), 1)
    assert.equal(await cache.runWithApp(app2, () => m()), 2)
    assert.equal(await cache.runWithApp(app1, () => m()), 1)
  })
})
