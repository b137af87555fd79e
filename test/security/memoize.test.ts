// Security: no memoized result ever reaches a caller it was not made for.
// Each test is an attack on memoize's identities (function, receiver, arguments).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { argumentsKey } from '../../src/core/argkey.js'
import { Cache } from '../../src/index.js'

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache' })
}

describe('security: one definition site, several functions', () => {
  it('memoize: two loaders from one factory never share entries (tenant acme vs globex)', async () => {
    const cache = newCache()
    const db = (tenant: string) => ({ invoice: async (id: number) => `${tenant}:invoice:${id}` })
    const makeInvoiceLoader = (tenant: string) =>
      cache.memoize(async (id: number) => db(tenant).invoice(id))
    const acme = makeInvoiceLoader('acme')
    assert.equal(await acme(1), 'acme:invoice:1')
    // The second, different function from the same place must not get acme's name.
    assert.throws(
      () => makeInvoiceLoader('globex'),
      (e: unknown) =>
        e instanceof TypeError &&
        /test\/security\/memoize\.test\.ts:\d+:\d+:anonymous/.test(e.message) &&
        /makeName/.test(e.message),
    )
    assert.equal(await acme(1), 'acme:invoice:1')
  })

  it('memoize: loaders from one factory with a name per tenant are told apart', async () => {
    const cache = newCache()
    const makeInvoiceLoader = (tenant: string) =>
      cache.memoize(async (id: number) => `${tenant}:invoice:${id}`, {
        makeName: (site) => `${site}:${tenant}`,
      })
    const acme = makeInvoiceLoader('acme')
    const globex = makeInvoiceLoader('globex')
    assert.equal(await acme(1), 'acme:invoice:1')
    assert.equal(await globex(1), 'globex:invoice:1')
    assert.notEqual(acme.memoizeName, globex.memoizeName)
  })

  it('memoize: a helper around cache.memoize refuses a second anonymous function', async () => {
    const cache = newCache()
    const cached = <A extends unknown[], R>(fn: (...args: A) => R) => cache.memoize(fn)
    const users = cached(async (id: number) => `user:${id}`)
    assert.equal(await users(1), 'user:1')
    assert.throws(() => cached(async (id: number) => `post:${id}`), TypeError)
  })

  it('memoize: a function memoized per request is refused on the second request', async () => {
    const cache = newCache()
    const handle = async (user: string) => {
      const profile = cache.memoize(async (id: number) => `${user}:profile:${id}`)
      return profile(1)
    }
    assert.equal(await handle('ann'), 'ann:profile:1')
    await assert.rejects(handle('bob'), TypeError)
  })

  it('memoize: the same function memoized again at one site keeps one name and its entries', async () => {
    const cache = newCache()
    let calls = 0
    const load = async (id: number) => `${id}:${++calls}`
    const memoized = () => cache.memoize(load)
    const a = memoized()
    const b = memoized()
    assert.equal(a.memoizeName, b.memoizeName)
    assert.equal(await a(1), '1:1')
    assert.equal(await b(1), '1:1')
  })
})

/** Loads row 1 through acme, globex, then acme again: each must get its own tenant's row. */
async function loadRowOneAsEach(
  acme: { load(id: number): Promise<string> },
  globex: { load(id: number): Promise<string> },
): Promise<void> {
  assert.equal(await acme.load(1), 'acme:row:1')
  assert.equal(await globex.load(1), 'globex:row:1')
  assert.equal(await acme.load(1), 'acme:row:1')
}

describe('security: a memoized plain function used as a method', () => {
  it('memoize: a memoized function on a prototype keys on this (tenant acme vs globex)', async () => {
    const cache = newCache()
    let calls = 0
    interface Repo {
      tenant: string
      load(id: number): Promise<string>
    }
    function Repo(this: Repo, tenant: string) {
      this.tenant = tenant
    }
    Repo.prototype.load = cache.memoize(async function (this: Repo, id: number) {
      calls++
      return `${this.tenant}:row:${id}`
    })
    const make = Repo as unknown as new (tenant: string) => Repo
    const acme = new make('acme')
    const globex = new make('globex')
    await loadRowOneAsEach(acme, globex)
    assert.equal(calls, 2, 'each receiver computes once')
  })

  it('memoize: a prototype function keys a cachingId() receiver by its id', async () => {
    const cache = newCache()
    let calls = 0
    class Account {
      constructor(readonly id: number) {}
      cachingId(): number {
        return this.id
      }
      declare load: () => Promise<string>
    }
    Account.prototype.load = cache.memoize(async function (this: Account) {
      calls++
      return `account:${this.id}`
    })
    assert.equal(await new Account(1).load(), 'account:1')
    assert.equal(await new Account(1).load(), 'account:1')
    assert.equal(await new Account(2).load(), 'account:2')
    assert.equal(calls, 2)
  })

  it('memoize: a memoized arrow in a class field never serves one instance a result of another', async () => {
    const cache = newCache()
    let calls = 0
    class TenantRepo {
      constructor(readonly tenant: string) {}
      load = cache.memoize(async (id: number) => {
        calls++
        return `${this.tenant}:row:${id}`
      })
    }
    const acme = new TenantRepo('acme')
    const globex = new TenantRepo('globex')
    await loadRowOneAsEach(acme, globex)
    assert.equal(calls, 2, 'each instance still caches its own results')
    assert.notEqual(acme.load.memoizeName, globex.load.memoizeName)
  })

  it('memoize: a bound method memoized in the constructor never serves one instance a result of another', async () => {
    const cache = newCache()
    let calls = 0
    class TenantRepo {
      constructor(readonly tenant: string) {
        this.load = cache.memoize(this.load.bind(this))
      }
      async load(id: number): Promise<string> {
        calls++
        return `${this.tenant}:row:${id}`
      }
    }
    const acme = new TenantRepo('acme')
    const globex = new TenantRepo('globex')
    await loadRowOneAsEach(acme, globex)
    assert.equal(calls, 2)
  })

  it('memoize: a function that never says this still shares across receivers', async () => {
    const cache = newCache()
    let calls = 0
    const api1 = {
      square: cache.memoize(async (x: number) => {
        calls++
        return x * x
      }),
    }
    const api2 = { square: api1.square }
    assert.equal(await api1.square(3), 9)
    assert.equal(await api2.square(3), 9)
    assert.equal(calls, 1)
  })
})

describe('security: argument keys are exact or refused', () => {
  const cache = newCache()
  const m = cache.memoize((..._args: unknown[]) => 'r', { makeName: () => 'security.args' })
  const key = (...args: unknown[]) => m.makeCacheKey(...(args as never[]))

  it('memoize: distinct values of one built-in kind never share a key', async () => {
    const buffer = (bytes: number[]) => new Uint8Array(bytes).buffer
    const headers = (v: string) => new Headers({ 'x-tenant': v })
    const sym = Symbol('k')
    const sparse: unknown[] = []
    sparse[1] = 1
    const p: Record<string, unknown> = { c: {} }
    ;(p.c as Record<string, unknown>).d = p
    const q: Record<string, unknown> = { c: {} }
    ;(q.c as Record<string, unknown>).d = q.c
    const pairs: [string, unknown, unknown][] = [
      ['URL', new URL('https://a.example/x'), new URL('https://b.example/x')],
      ['URLSearchParams', new URLSearchParams('tenant=acme'), new URLSearchParams('tenant=globex')],
      ['Headers', headers('acme'), headers('globex')],
      ['ArrayBuffer', buffer([1]), buffer([2])],
      ['DataView', new DataView(buffer([1])), new DataView(buffer([2]))],
      ['Uint8Array vs Int8Array', new Uint8Array([1]), new Int8Array([1])],
      ['Uint8Array vs Buffer', new Uint8Array([1]), Buffer.from([1])],
      ['Number object', Object(1), Object(2)],
      ['String object', Object('acme'), Object('globex')],
      ['Boolean object', Object(true), Object(false)],
      ['BigInt object', Object(1n), Object(2n)],
      ['boxed vs primitive', Object(1), 1],
      ['sparse vs dense', sparse, [undefined, 1]],
      ['symbol-keyed state', { [sym]: 'acme' }, { [sym]: 'globex' }],
      ['null prototype', Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
      ['RegExp lastIndex', /a/g, Object.assign(/a/g, { lastIndex: 1 })],
      ['two cycles', p, q],
      ['Date', new Date(1), new Date(2)],
      ['Map', new Map([['a', 1]]), new Map([['a', 2]])],
      ['Set', new Set(['acme']), new Set(['globex'])],
    ]
    for (const [what, a, b] of pairs) {
      assert.notEqual(await key(a), await key(b), what)
    }
  })

  it('memoize: arguments with hidden state are refused with a TypeError naming the argument', async () => {
    class Secret {
      readonly #tenant: string
      constructor(tenant: string) {
        this.#tenant = tenant
      }
      get tenant(): string {
        return this.#tenant
      }
    }
    class Stamp extends Date {}
    const hidden = Object.defineProperty({}, 'tenant', { value: 'acme', enumerable: false })
    const extra = Object.assign([1], { tenant: 'acme' })
    const refused: [string, unknown][] = [
      ['#private class instance', new Secret('acme')],
      ['Error', new Error('acme')],
      ['non-enumerable property', hidden],
      ['array with extra property', extra],
      ['Date subclass', new Stamp(0)],
      ['Promise', Promise.resolve(1)],
      ['WeakMap', new WeakMap()],
      ['nested', { filter: { owner: new Secret('acme') } }],
    ]
    for (const [what, value] of refused) {
      await assert.rejects(
        m(1, value),
        (e: unknown) =>
          e instanceof TypeError &&
          /argument 1/.test(e.message) &&
          /cachingId\(\)/.test(e.message) &&
          /argsToIgnore/.test(e.message),
        what,
      )
    }
    await assert.rejects(
      m({ filter: { owner: new Secret('a') } }),
      /argument 0 \(at \.filter\.owner\)/,
    )
  })

  it('memoize: cachingId() arguments are keyed with their class (User(42) vs Group(42), two classes named User)', async () => {
    class User {
      constructor(readonly id: number) {}
      cachingId(): number {
        return this.id
      }
    }
    class Group {
      constructor(readonly id: number) {}
      cachingId(): number {
        return this.id
      }
    }
    const OtherUser = (() => {
      class User {
        constructor(readonly id: number) {}
        cachingId(): string {
          return `other-${this.id}`.slice(6)
        }
      }
      return User
    })()
    assert.equal(await key(new User(42)), await key(new User(42)), 'one row, one key')
    assert.notEqual(await key(new User(42)), await key(new Group(42)))
    assert.notEqual(await key(new User(42)), await key(new OtherUser(42)))
    assert.notEqual(await key(new User(42)), await key(42))
  })

  it('memoize: two classes made by one factory are refused as arguments', async () => {
    const makeModel = (table: string) =>
      class Model {
        constructor(readonly id: number) {}
        cachingId(): number {
          return this.id
        }
        get table(): string {
          return table
        }
      }
    const Invoices = makeModel('invoices')
    const Payments = makeModel('payments')
    await key(new Invoices(1))
    await assert.rejects(key(new Payments(1)), TypeError)
  })

  it('memoize: argsToIgnore lets a refused argument through', async () => {
    const c = newCache()
    const log = c.memoize((id: number, _logger: unknown) => id, { argsToIgnore: [1] })
    class Logger {
      readonly #lines: string[] = []
      info(line: string): void {
        this.#lines.push(line)
      }
    }
    assert.equal(await log(1, new Logger()), 1)
    assert.equal(await log(1, new Logger()), 1)
  })

  // Arguments fast-check can build, from small pools so that equal pairs occur often.
  const anything = fc.anything({
    maxDepth: 2,
    maxKeys: 3,
    key: fc.constantFrom('a', 'b', '__proto__', ''),
    values: [
      fc.constantFrom(0, -0, 1, Number.NaN, '', 'a', '1', null, undefined, true, 1n),
      fc.integer({ min: -2, max: 2 }),
    ],
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
  })

  // Tiny values, so that random pairs are often equal or nearly equal.
  const tiny = fc.anything({
    maxDepth: 1,
    maxKeys: 2,
    key: fc.constantFrom('a', 'b'),
    values: [fc.constantFrom(0, -0, 1, Number.NaN, '', '0', null, undefined)],
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withSparseArray: true,
    withTypedArray: true,
  })
  const pairs = fc.oneof(
    fc.tuple(anything, anything),
    fc.tuple(tiny, tiny),
    anything.map((a) => [a, reordered(a)] as const),
  )

  it('memoize: two arguments get the same key only when they are structurally equal (fast-check)', () => {
    let equalPairs = 0
    fc.assert(
      fc.property(pairs, ([a, b]) => {
        const same = argumentsKey([a]) === argumentsKey([b])
        if (same) equalPairs++
        // The oracle: node's strict deep equality (which tells -0 from 0 and NaN is NaN).
        return !same || isDeepStrictEqual(a, b)
      }),
      { seed: 20240611, numRuns: 3000 },
    )
    assert.ok(equalPairs > 300, `the pairs include many equal ones (${equalPairs})`)
  })

  it('memoize: structurally equal arguments share a key (fast-check, copies in other key order)', () => {
    fc.assert(
      fc.property(anything, (a) => {
        const b = reordered(a)
        fc.pre(isDeepStrictEqual(a, b))
        return argumentsKey([a]) === argumentsKey([b])
      }),
      { seed: 20240611, numRuns: 2000 },
    )
  })
})

/** A deep copy with object keys, Map and Set entries in reverse insertion order. */
function reordered(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v
  const proto = Object.getPrototypeOf(v)
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length)
    for (let i = 0; i < v.length; i++) if (i in v) out[i] = reordered(v[i])
    return out
  }
  if (v instanceof Map)
    return new Map([...v].reverse().map(([k, x]) => [reordered(k), reordered(x)]))
  if (v instanceof Set) return new Set([...v].reverse().map(reordered))
  if (proto === Object.prototype || proto === null) {
    const out = Object.create(proto) as Record<string, unknown>
    for (const k of Object.keys(v).reverse()) {
      Object.defineProperty(out, k, {
        value: reordered((v as Record<string, unknown>)[k]),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return out
  }
  return v
}
