/**
 * The backend contract suite: the behaviour every cachette backend promises,
 * as a set of `node:test` tests (or any runner with `describe`/`it`/`before`/`after`).
 * Built-in backends run it against real servers; third-party backends can run
 * it too:
 *
 * ```ts
 * import { backendContract } from 'cachette/testing'
 * backendContract('MyCache', { create: () => new MyCache({ ... }) })
 * ```
 * @packageDocumentation
 *
 * @module cachette/testing
 */
import assert from 'node:assert/strict'
import * as nodeTest from 'node:test'
import type { CacheBackend } from '../core/backend.js'

/** The test functions the suite registers its tests with. Defaults to `node:test`. */
export interface TestRunner {
  /** Groups tests. */
  describe(name: string, fn: () => void): unknown
  /** One test. */
  it(name: string, fn: () => Promise<void> | void): unknown
  /** Runs before the group. */
  before(fn: () => Promise<void> | void): unknown
  /** Runs after the group. */
  after(fn: () => Promise<void> | void): unknown
  /** Runs before each test. */
  beforeEach(fn: () => Promise<void> | void): unknown
}

/** How the suite builds and drives the backend under test. */
export interface ContractOptions {
  /** Builds the backend. Called once; the suite calls `clear()` before each test. */
  create(): CacheBackend | Promise<CacheBackend>
  /** Tears it down after the suite (defaults to `backend.close()`). */
  destroy?(backend: CacheBackend): Promise<void> | void
  /**
   * Moves the backend's clock forward by `ms`. Give it when the backend takes
   * an injectable clock; without it the expiry tests sleep in real time
   * (about two seconds in all).
   */
  advanceTime?(ms: number): void | Promise<void>
  /** Whether `inc` is atomic (concurrent increments never lose updates). @default true */
  atomicIncrement?: boolean
  /** The largest value size, in bytes, the backend must store. @default 1 MiB */
  largeValueBytes?: number
  /**
   * The backend deliberately stores nothing (like `NullCache`): the suite then
   * checks that every write is accepted, every read misses, and unstorable
   * values are still rejected.
   * @default false
   */
  storesNothing?: boolean
  /**
   * Stores `bytes` at `key` of `backend` (the one `create` built) as another
   * program would, bypassing the backend's encoding (for Redis a raw `SET`
   * under the key prefix). Give it for a byte-oriented backend: the suite
   * then checks how foreign bytes decode (a 400-digit decimal must not read
   * as `Infinity`).
   */
  writeRaw?(key: string, bytes: Buffer, backend: CacheBackend): Promise<void> | void
  /** The test runner. @default node:test */
  runner?: TestRunner
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Values of every type the contract promises to round-trip, by name. */
export function sampleValues(): Record<string, unknown> {
  return {
    string: 'hello',
    emptyString: '',
    unicode: 'zürich ☃ 日本 🎉',
    integer: 42,
    negative: -7,
    zero: 0,
    float: 3.25,
    bigInteger: 2 ** 53 + 2,
    true: true,
    false: false,
    null: null,
    array: [1, 'two', null, [3]],
    object: { a: 1, nested: { b: [true, null] } },
    date: new Date('2024-02-29T12:34:56.789Z'),
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, { b: 'c' }],
    ]),
    set: new Set([1, 'x', 3]),
    buffer: Buffer.from([0, 1, 2, 250, 255]),
    uint8array: new Uint8Array([9, 8, 7]),
    bigint: 12345678901234567890n,
  }
}

/**
 * Registers the contract tests for one backend under `describe(name)`.
 */
export function backendContract(name: string, options: ContractOptions): void {
  const t = options.runner ?? (nodeTest as unknown as TestRunner)
  const atomic = options.atomicIncrement ?? true
  let backend: CacheBackend
  const advance = async (ms: number): Promise<void> => {
    if (options.advanceTime) await options.advanceTime(ms)
    else await sleep(ms)
  }

  if (options.storesNothing) {
    nullContract(name, options, t)
    return
  }

  t.describe(`${name}: backend contract`, () => {
    t.before(async () => {
      backend = await options.create()
    })
    t.after(async () => {
      if (options.destroy) await options.destroy(backend)
      else await backend.close?.()
    })
    t.beforeEach(async () => {
      await backend.clear()
    })

    t.it('get on a missing key resolves undefined', async () => {
      assert.equal(await backend.get('missing'), undefined)
    })

    t.it('round-trips every supported type with its type intact', async () => {
      for (const [label, value] of Object.entries(sampleValues())) {
        assert.equal(await backend.set(`v:${label}`, value), true, `set ${label}`)
        const back = await backend.get(`v:${label}`)
        assert.deepStrictEqual(back, value, `round-trip of ${label}`)
      }
      assert.ok(Buffer.isBuffer(await backend.get('v:buffer')), 'a Buffer comes back as a Buffer')
      assert.ok((await backend.get('v:date')) instanceof Date, 'a Date comes back as a Date')
    })

    t.it('stores a copy: mutating the value after set does not change the entry', async () => {
      const value = { list: [1, 2] }
      await backend.set('copy', value)
      value.list.push(3)
      assert.deepStrictEqual(await backend.get('copy'), { list: [1, 2] })
      const read = (await backend.get('copy')) as { list: number[] }
      read.list.push(4)
      assert.deepStrictEqual(await backend.get('copy'), { list: [1, 2] })
    })

    t.it('null is a value, distinct from a miss', async () => {
      await backend.set('nothing', null)
      assert.equal(await backend.get('nothing'), null)
      assert.equal(await backend.has('nothing'), true)
    })

    t.it('set overwrites', async () => {
      await backend.set('k', 'one')
      await backend.set('k', 'two')
      assert.equal(await backend.get('k'), 'two')
    })

    t.it('a value that cannot be stored is a TypeError and the old value survives', async () => {
      await backend.set('keep', 'old')
      await assert.rejects(
        backend.set('keep', () => 1),
        TypeError,
      )
      await assert.rejects(backend.set('keep', Symbol('s')), TypeError)
      await assert.rejects(backend.set('keep', undefined), TypeError)
      assert.equal(await backend.get('keep'), 'old')
    })

    t.it(
      'keys may hold spaces, slashes, unicode, control-free punctuation and 300 characters',
      async () => {
        const keys = ['with space', 'a/b/c', 'ключ', 'view//users/1', 'x'.repeat(300), 'a:b|c*?']
        for (const key of keys) {
          await backend.set(key, key.length)
          assert.equal(await backend.get(key), key.length, key)
        }
      },
    )

    t.it('keys that are not well-formed UTF-16 are distinct entries', async () => {
      // Lone surrogates, U+FFFD (what UTF-8 turns a lone surrogate into), a
      // valid pair, and look-alikes of an escaped form: each its own entry.
      const keys = [
        '\uD800',
        '\uDC00',
        '\uFFFD',
        '\uD800\uDC00',
        'a\uD800b',
        'a\uDBFFb',
        'a\uFFFDb',
        '~u~\\uD800',
        '~u~\uD800',
        '~u~',
      ]
      for (const [i, key] of keys.entries()) assert.equal(await backend.set(key, i), true)
      for (const [i, key] of keys.entries()) {
        assert.equal(await backend.get(key), i, JSON.stringify(key))
        assert.equal(await backend.has(key), true, JSON.stringify(key))
      }
      assert.deepStrictEqual(
        await backend.getMany(keys),
        keys.map((_, i) => i),
      )
      assert.equal(await backend.delete('\uD800'), true)
      assert.equal(await backend.get('\uD800'), undefined)
      assert.equal(await backend.get('\uDC00'), 1)
      assert.equal(await backend.get('\uFFFD'), 2)
    })

    t.it('numbers beyond the safe integer range round-trip exactly', async () => {
      const numbers = [2 ** 53, 2 ** 53 + 2, -(2 ** 60), 1e21, 1e300, Number.MAX_VALUE, -0, 0.1]
      for (const [i, n] of numbers.entries()) {
        await backend.set(`num:${i}`, n)
        assert.ok(Object.is(await backend.get(`num:${i}`), n), `round-trip of ${n}`)
      }
    })

    if (options.writeRaw) {
      const writeRaw = (key: string, bytes: Buffer) => options.writeRaw?.(key, bytes, backend)
      t.it('a decimal written by another program decodes exactly, never to Infinity', async () => {
        const digits = `9${'8'.repeat(399)}`
        await writeRaw('raw:huge', Buffer.from(digits, 'latin1'))
        const huge = await backend.get('raw:huge')
        assert.notEqual(huge, Number.POSITIVE_INFINITY)
        assert.equal(huge, BigInt(digits))
        await writeRaw('raw:unsafe', Buffer.from('-9007199254740993', 'latin1'))
        assert.equal(await backend.get('raw:unsafe'), -9007199254740993n)
        await writeRaw('raw:safe', Buffer.from('12345', 'latin1'))
        assert.equal(await backend.get('raw:safe'), 12345)
      })
    }

    t.it('a timeout too large to represent means the entry never expires', async () => {
      assert.equal(await backend.set('far', 'v', 1e306), true)
      assert.equal(await backend.get('far'), 'v')
      assert.equal(await backend.add('far-add', 'a', 1e306), true)
      assert.equal(await backend.get('far-add'), 'a')
      await backend.setMany([['far-many', 'm']], Number.MAX_VALUE)
      assert.equal(await backend.get('far-many'), 'm')
      await advance(2100)
      assert.equal(await backend.get('far'), 'v')
    })

    t.it(
      'a timeout that is not a non-negative number is a TypeError; nothing is written',
      async () => {
        await backend.set('t', 'old')
        const bad: unknown[] = [new Date(), '10', Number.NaN, -1, {}, 10n]
        for (const timeout of bad) {
          await assert.rejects(
            backend.set('t', 'new', timeout as number),
            TypeError,
            `set with ${String(timeout)}`,
          )
          await assert.rejects(backend.add('t-add', 'new', timeout as number), TypeError)
        }
        assert.equal(await backend.get('t'), 'old')
        assert.equal(await backend.get('t-add'), undefined)
      },
    )

    t.it('add stores only when the key is absent', async () => {
      assert.equal(await backend.add('a', 1), true)
      assert.equal(await backend.add('a', 2), false)
      assert.equal(await backend.get('a'), 1)
    })

    t.it('delete resolves whether the key existed', async () => {
      await backend.set('d', 1)
      assert.equal(await backend.delete('d'), true)
      assert.equal(await backend.get('d'), undefined)
      assert.equal(await backend.delete('d'), false)
    })

    t.it('has reflects presence', async () => {
      assert.equal(await backend.has('h'), false)
      await backend.set('h', 0)
      assert.equal(await backend.has('h'), true)
    })

    t.it('getMany returns values in key order with undefined for misses', async () => {
      await backend.set('m1', 'one')
      await backend.set('m3', 3)
      assert.deepStrictEqual(await backend.getMany(['m1', 'm2', 'm3']), ['one', undefined, 3])
    })

    t.it('setMany stores every entry and resolves their keys', async () => {
      const stored = await backend.setMany([
        ['s1', 1],
        ['s2', { two: 2 }],
      ])
      assert.deepStrictEqual([...stored].sort(), ['s1', 's2'])
      assert.deepStrictEqual(await backend.getMany(['s1', 's2']), [1, { two: 2 }])
    })

    t.it('setMany with one unstorable value writes nothing', async () => {
      await assert.rejects(
        backend.setMany([
          ['ok', 1],
          ['bad', () => 2],
        ]),
        TypeError,
      )
      assert.equal(await backend.get('ok'), undefined)
    })

    t.it('deleteMany removes keys and counts missing ones as deleted', async () => {
      await backend.setMany([
        ['x1', 1],
        ['x2', 2],
        ['x3', 3],
      ])
      const gone = await backend.deleteMany(['x1', 'x2', 'never'])
      assert.deepStrictEqual([...gone].sort(), ['never', 'x1', 'x2'])
      assert.deepStrictEqual(await backend.getMany(['x1', 'x2', 'x3']), [undefined, undefined, 3])
    })

    t.it('clear removes every entry', async () => {
      await backend.setMany([
        ['c1', 1],
        ['c2', 2],
      ])
      assert.equal(await backend.clear(), true)
      assert.deepStrictEqual(await backend.getMany(['c1', 'c2']), [undefined, undefined])
    })

    t.it('keys lists the live keys under a prefix (backends that have keys())', async () => {
      const list = backend.keys?.bind(backend)
      if (list === undefined) return
      const collect = async (prefix: string): Promise<string[]> => {
        const out: string[] = []
        for await (const key of list(prefix)) out.push(key)
        return out.sort()
      }
      await backend.setMany([
        ['list/a', 1],
        ['list/b', 2],
        ['lister', 3],
      ])
      await backend.set('list/gone', 4)
      await backend.delete('list/gone')
      assert.deepStrictEqual(await collect('list/'), ['list/a', 'list/b'])
      assert.deepStrictEqual(await collect('list/nothing'), [])
      const all = await collect('')
      for (const key of ['list/a', 'list/b', 'lister']) assert.ok(all.includes(key), key)
    })

    t.it('inc and dec create from 0 and return the new value', async () => {
      assert.equal(await backend.inc('n', 1), 1)
      assert.equal(await backend.inc('n', 5), 6)
      assert.equal(await backend.inc('n', -2), 4)
      assert.equal(await backend.get('n'), 4)
      await backend.set('preset', 10)
      assert.equal(await backend.inc('preset', 1), 11)
    })

    t.it('inc on a non-integer value rejects with a TypeError and leaves it', async () => {
      await backend.set('s', 'text')
      await assert.rejects(backend.inc('s', 1), TypeError)
      assert.equal(await backend.get('s'), 'text')
    })

    if (atomic) {
      t.it('concurrent increments lose no update', async () => {
        await Promise.all(Array.from({ length: 50 }, () => backend.inc('ctr', 1)))
        assert.equal(await backend.get('ctr'), 50)
      })
    }

    t.it(`stores a value of ${(options.largeValueBytes ?? 1 << 20) / 1024} KiB`, async () => {
      const big = Buffer.alloc(options.largeValueBytes ?? 1 << 20, 7)
      big[big.length - 1] = 1
      await backend.set('big', big)
      assert.ok(big.equals((await backend.get('big')) as Buffer))
    })

    t.it('entries expire after their timeout; 0 never expires; the default applies', async () => {
      await backend.set('short', 's', 1)
      await backend.set('forever', 'f', 0)
      await backend.set('default', 'd')
      await backend.setMany([['many', 'm']], 1)
      await backend.add('added', 'a', 1)
      await backend.set('long', 'l', 1000)
      // Read back at once only on an injected clock: a real server's clock may tick
      // (memcached counts whole seconds) before a 1 s entry is read on a busy machine.
      if (options.advanceTime) assert.equal(await backend.get('short'), 's')
      assert.equal(await backend.get('long'), 'l')
      await advance(2100)
      assert.equal(await backend.get('short'), undefined)
      assert.equal(await backend.has('short'), false)
      assert.equal(await backend.get('many'), undefined)
      assert.equal(await backend.get('added'), undefined)
      assert.equal(
        await backend.add('added', 'again', 1),
        true,
        'add succeeds over an expired entry',
      )
      assert.equal(await backend.get('forever'), 'f')
      assert.equal(await backend.get('long'), 'l', 'a 1000 s entry outlives the 1 s ones')
      if (backend.defaultTimeout === 0 || backend.defaultTimeout > 3) {
        assert.equal(await backend.get('default'), 'd')
      }
    })
  })
}

function nullContract(name: string, options: ContractOptions, t: TestRunner): void {
  let backend: CacheBackend
  t.describe(`${name}: backend contract (stores nothing)`, () => {
    t.before(async () => {
      backend = await options.create()
    })
    t.after(async () => {
      if (options.destroy) await options.destroy(backend)
      else await backend.close?.()
    })

    t.it('accepts every write and misses every read', async () => {
      for (const [label, value] of Object.entries(sampleValues())) {
        assert.equal(await backend.set(`v:${label}`, value), true, label)
        assert.equal(await backend.get(`v:${label}`), undefined, label)
      }
      assert.equal(await backend.add('a', 1), true)
      assert.equal(await backend.has('a'), false)
      assert.deepStrictEqual(await backend.getMany(['a', 'b']), [undefined, undefined])
      assert.deepStrictEqual(await backend.setMany([['a', 1]]), ['a'])
    })

    t.it('deletes report success and clear succeeds', async () => {
      assert.deepStrictEqual(await backend.deleteMany(['a', 'b']), ['a', 'b'])
      assert.equal(await backend.clear(), true)
    })

    t.it('still rejects values no backend could store', async () => {
      await assert.rejects(
        backend.set('k', () => 1),
        TypeError,
      )
      await assert.rejects(backend.set('k', undefined), TypeError)
      await assert.rejects(backend.setMany([['k', Symbol('s')]]), TypeError)
    })

    t.it('inc returns the delta (nothing is kept)', async () => {
      assert.equal(await backend.inc('n', 3), 3)
      assert.equal(await backend.inc('n', 3), 3)
    })
  })
}
