// Security: memoize keys built without a hash for short argument lists.
// A short key is the argument text itself; a long one is hashed. Every test
// here is an attempt to make two different calls meet at one key (so one
// caller would receive a result computed for another).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { wireKey } from '../../src/backends/memcached/keys.js'
import { argumentsKey } from '../../src/core/argkey.js'
import { RAW_KEY_MAX } from '../../src/core/memoize.js'
import { objectName } from '../../src/core/objectstore.js'
import { Cache } from '../../src/index.js'

/** Where a memoize key's parts are: 22 prefix characters, a 6-character version, a marker. */
const PREFIX = 22
const VERSION = 6
const MARK = PREFIX + VERSION
/** The hashed form's digest: 22 base64url characters (132 bits). */
const HASHED = new RegExp(`^[\\w-]{${PREFIX}}[A-Za-z0-9+/]{${VERSION}}#[\\w-]{22}$`)

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 100_000 })
}

/** A memoized function that returns a fresh token per computation, so a leak shows as a wrong token. */
function recorder(cache: Cache, name = 'security.keys') {
  let n = 0
  const computed = new Map<string, string>()
  const m = cache.memoize(
    async (...args: unknown[]) => {
      const token = `result-${++n}`
      computed.set(token, argumentsKey(args))
      return token
    },
    { makeName: () => name },
  )
  const key = (...args: unknown[]) => m.makeCacheKey(...(args as never[]))
  return { m, key, computed }
}

/** A string whose one-argument body `(${JSON})` is exactly `length` characters. */
function stringWithBody(length: number, fill = 'a'): string {
  return fill.repeat(length - 4)
}

/** Every argument list gets its own key, and each call gets the result computed for it. */
async function assertApart(
  r: ReturnType<typeof recorder>,
  lists: readonly (readonly unknown[])[],
): Promise<void> {
  const byKey = new Map<string, string>()
  for (const args of lists) {
    const text = argumentsKey(args)
    const key = await r.key(...args)
    const other = byKey.get(key)
    assert.ok(
      other === undefined || other === text,
      `${text} and ${other} share the key ${JSON.stringify(key)}`,
    )
    byKey.set(key, text)
  }
  for (const pass of [1, 2]) {
    for (const args of lists) {
      const token = (await r.m(...(args as never[]))) as string
      assert.equal(r.computed.get(token), argumentsKey(args), `pass ${pass}: ${argumentsKey(args)}`)
    }
  }
}

describe('security: memoize keys without a hash', () => {
  it('memoize keys: a short raw key never equals the hashed key of another argument list', async () => {
    const r = recorder(newCache())
    const long = 'x'.repeat(RAW_KEY_MAX * 2)
    const hashed = await r.key(long)
    assert.match(hashed, HASHED)
    assert.equal(hashed[MARK], '#')
    const digest = hashed.slice(MARK + 1)
    // Raw texts built from the hashed key's own characters: none may land on it.
    const attempts: unknown[][] = [
      [hashed],
      [hashed.slice(MARK)],
      [digest],
      [`#${digest}`],
      [`#${digest}`.slice(0, -1)],
      [hashed.slice(0, MARK)],
      ['#', digest],
      [{ '#': digest }],
      [[digest]],
    ]
    for (const args of attempts) {
      const key = await r.key(...args)
      assert.notEqual(key, hashed, argumentsKey(args))
      assert.equal(key[MARK], ':', `${argumentsKey(args)} is short, so raw`)
      assert.equal(key.slice(MARK + 1), argumentsKey(args))
    }
    await assertApart(r, [[long], ...attempts])
  })

  it('memoize keys: arguments that encode to the same raw text are told apart', async () => {
    const r = recorder(newCache())
    const separators = ['(', ')', ',', ':', '#', '"', '\\', '{', '}', '[', ']', '~', '=>', ' ', '']
    const lists: unknown[][] = [
      // Types whose naive text is the same.
      [1],
      ['1'],
      [1n],
      ['n:1'],
      ['big:1'],
      [null],
      ['null'],
      [true],
      ['true'],
      [false],
      ['false'],
      [undefined, 1],
      ['undefined', 1],
      [],
      [''],
      [[]],
      [{}],
      ['{}'],
      ['[]'],
      [-0],
      [0],
      ['n:-0'],
      [Number.NaN],
      ['NaN'],
      // Lists and their separators.
      ['a,b'],
      ['a', 'b'],
      [['a', 'b']],
      [['a'], 'b'],
      [['a,b']],
      ['a', ['b']],
      [{ a: 'b' }],
      ['{"a":"b"}'],
      [{ a: 'b', c: 'd' }],
      [{ a: 'b","c":"d' }],
      [{ 'a":"b': 'c' }],
      ['"a"'],
      ['a'],
      ['\\"a\\"'],
      [[1, [2, 3]]],
      [[1, 2], 3],
      [[[1, 2], 3]],
      ['(n:1)'],
      ['(n:1),(n:2)'],
      ['n:1)', '(n:2'],
      [1, 2],
      // Unicode: canonically equal but different code points; lone surrogates and U+FFFD.
      ['é'],
      ['e\u0301'],
      ['\ud800'],
      ['\udc00'],
      ['\ufffd'],
      ['\\ud800'],
      ['😀'],
      ['\ud83d', '\ude00'],
      ['\u0000'],
      ['\\u0000'],
      ['\n'],
      ['\\n'],
      ['\u007f'],
      ['\u0085'],
      ['\u2028'],
    ]
    for (const s of separators) {
      lists.push([`a${s}b`], [`a${s}`, 'b'], ['a', `${s}b`], [{ [`a${s}`]: 'b' }], [[`a${s}`, 'b']])
    }
    await assertApart(r, lists)
  })

  it('memoize keys: lengths right at the threshold', async () => {
    const cache = newCache()
    const r = recorder(cache)
    const lists: unknown[][] = []
    for (let length = RAW_KEY_MAX - 2; length <= RAW_KEY_MAX + 2; length++) {
      lists.push([stringWithBody(length)], [stringWithBody(length, 'b')])
      // An escaped character counts as its escape: `"` is `\"` in the text.
      lists.push([`${stringWithBody(length - 1)}"`])
      // A surrogate pair straddling the threshold, and a lone half of it.
      lists.push([`${stringWithBody(length - 1)}😀`], [`${stringWithBody(length - 1)}\ud83d`])
      // Two arguments, and an object, of the same total length.
      lists.push(['a', stringWithBody(length - 4)], [{ k: stringWithBody(length - 6) }])
    }
    for (const args of lists) {
      const key = await r.key(...args)
      const text = argumentsKey(args)
      if (text.length <= RAW_KEY_MAX) assert.equal(key.slice(MARK), `:${text}`, text)
      else assert.match(key, HASHED, text)
    }
    await assertApart(r, lists)
    // deleteMemoized(fn, ...args) finds what fn(...args) stored, on both sides of the threshold.
    for (const args of lists) {
      const key = await r.key(...args)
      assert.notEqual(await cache.get(key), undefined)
      await cache.deleteMemoized(r.m, ...args)
      assert.equal(await cache.get(key), undefined, argumentsKey(args))
    }
    for (const args of lists) {
      const token = (await r.m(...(args as never[]))) as string
      assert.equal(r.computed.get(token), argumentsKey(args))
    }
  })

  it('memoize keys: function names and sourceCheck never run into the arguments', async () => {
    const cache = newCache()
    // Names whose text followed by an argument text could read as another name's.
    const fns = ['f', 'f(', 'f("a")', 'f"', '', 'f:', 'f#'].map((name) => ({
      name,
      r: recorder(cache, name),
    }))
    const seen = new Map<string, string>()
    for (const { name, r } of fns) {
      for (const args of [[], ['a'], ['("a")'], [')']]) {
        const key = await r.key(...args)
        const what = `${JSON.stringify(name)}${argumentsKey(args)}`
        assert.equal(seen.get(key), undefined, `${what} and ${seen.get(key)}`)
        seen.set(key, what)
      }
    }
    for (const { r } of fns) {
      const token = (await r.m('a')) as string
      assert.equal(r.computed.get(token), argumentsKey(['a']))
    }
    // Same name, different source: sourceCheck keeps them apart on raw keys too.
    const a = cache.memoize((x: string) => `a:${x}`, { makeName: () => 'src', sourceCheck: true })
    const b = cache.memoize((x: string) => `b:${x}`, { makeName: () => 'src', sourceCheck: true })
    assert.equal(await a('1'), 'a:1')
    assert.equal(await b('1'), 'b:1')
    assert.notEqual(await a.makeCacheKey('1'), await b.makeCacheKey('1'))
  })

  it('memoize keys: receivers are told apart from the arguments', async () => {
    const cache = newCache()
    let n = 0
    const results = new Map<string, string>()
    const load = cache.memoize(async function (this: unknown, ...args: unknown[]) {
      const token = `result-${++n}`
      results.set(token, `${String((this as { id?: unknown })?.id)}|${argumentsKey(args)}`)
      return token
    })
    const row = (id: unknown) => ({ id, cachingId: () => id })
    const receivers = [
      row('1'),
      row('1(n:1)'),
      row('(n:1)'),
      row('1"'),
      row(':'),
      row('3:'),
      row(''),
    ]
    const argLists: unknown[][] = [[], [1], ['1'], ['(n:1)'], [1, 1]]
    const seen = new Map<string, string>()
    for (const self of receivers) {
      for (const args of argLists) {
        const key = await load.makeCacheKey.call(self as never, ...(args as never[]))
        const what = `${String(self.id)}|${argumentsKey(args)}`
        assert.equal(seen.get(key), undefined, `${what} and ${seen.get(key)}`)
        seen.set(key, what)
        const token = (await load.call(self as never, ...(args as never[]))) as string
        assert.equal(results.get(token), what)
      }
    }
  })

  it('memoize keys: the recent keys of one-argument calls are exact (0 and -0, 1, "1", 1n, NaN)', async () => {
    const cache = newCache()
    const r = recorder(cache)
    const values: unknown[] = [
      0,
      -0,
      1,
      '1',
      1n,
      true,
      'true',
      null,
      'null',
      undefined,
      '',
      Number.NaN,
      Number.NEGATIVE_INFINITY,
      'a'.repeat(64),
      'a'.repeat(65),
      `${'a'.repeat(63)}😀`,
    ]
    // Several passes, each value in turn, so each call may find another's recent key.
    for (let pass = 0; pass < 3; pass++) {
      for (const v of values) {
        const token = (await r.m(v)) as string
        assert.equal(r.computed.get(token), argumentsKey([v]), `pass ${pass}: ${argumentsKey([v])}`)
        assert.equal(await r.key(v), await r.key(v, undefined), 'the key deleteMemoized uses')
      }
    }
    // A new version, and a second app with its own hash: the recent keys follow.
    const before = (await r.m(1)) as string
    await cache.deleteMemoized(r.m, 1)
    const recomputed = (await r.m(1)) as string
    assert.notEqual(recomputed, before)
    await cache.deleteMemoized(r.m)
    assert.notEqual(await r.m(1), recomputed)
    const sha256Prefix = (await r.key(1)).slice(0, PREFIX)
    const app = {}
    cache.initApp(app, { CACHE_TYPE: 'SimpleCache', CACHE_HASH_METHOD: 'md5' })
    const inApp = (await cache.runWithApp(app, () => r.m(1))) as string
    assert.equal(r.computed.get(inApp), argumentsKey([1]))
    assert.notEqual((await cache.runWithApp(app, () => r.key(1))).slice(0, PREFIX), sha256Prefix)
  })

  it('memoize keys: a new version always changes raw and hashed keys alike', async () => {
    const cache = newCache()
    const r = recorder(cache)
    const short = ['a']
    const long = [stringWithBody(RAW_KEY_MAX + 1)]
    const before = [await r.key(...short), await r.key(...long)]
    const first = [await r.m(...short), await r.m(...long)]
    await cache.deleteMemoized(r.m)
    const after = [await r.key(...short), await r.key(...long)]
    for (let i = 0; i < 2; i++) {
      assert.notEqual(after[i], before[i])
      assert.equal((after[i] as string).slice(0, PREFIX), (before[i] as string).slice(0, PREFIX))
      assert.notEqual(await r.m(...(i === 0 ? short : long)), first[i])
    }
    const second = [await r.m(...short), await r.m(...long)]
    await cache.deleteMemoizedVerhash(r.m)
    assert.notEqual(await r.m(...short), second[0])
    assert.notEqual(await r.m(...long), second[1])
  })

  // Argument lists fast-check can build: strings from an alphabet of the encoding's own
  // separators, long enough to land on both sides of the threshold.
  const unit = fc.constantFrom(
    'a',
    '(',
    ')',
    ',',
    ':',
    '#',
    '"',
    '\\',
    '{',
    '}',
    'n',
    '1',
    '😀',
    '\ud800',
  )
  const text = fc.oneof(
    fc.string({ unit, maxLength: 4 }),
    fc.string({ unit, minLength: RAW_KEY_MAX - 24, maxLength: RAW_KEY_MAX }),
  )
  const value = fc.oneof(
    text,
    fc.constantFrom(0, -0, 1, Number.NaN, null, undefined, true, false, 1n, '', 'n:1', 'null'),
    fc.array(text, { maxLength: 3 }),
    fc.dictionary(text, text, { maxKeys: 2 }),
  )
  const list = fc.array(value, { maxLength: 3 })

  it('memoize keys: two argument lists share a key only when their texts are equal (fast-check)', async () => {
    const r = recorder(newCache())
    let raw = 0
    let hashed = 0
    await fc.assert(
      fc.asyncProperty(list, list, async (a, b) => {
        const [ka, kb] = [await r.key(...a), await r.key(...b)]
        for (const k of [ka, kb]) if (k[MARK] === ':') raw++
        for (const k of [ka, kb]) if (k[MARK] === '#') hashed++
        return (ka === kb) === (argumentsKey(a) === argumentsKey(b))
      }),
      { seed: 20251207, numRuns: 1500 },
    )
    assert.ok(raw > 300 && hashed > 300, `both forms were tried (raw ${raw}, hashed ${hashed})`)
  })

  it('memoize keys: strings are quoted exactly as JSON.stringify quotes them (fast-check)', () => {
    const tricky = fc.constantFrom(
      '"',
      '\\',
      '\u0000',
      '\u001f',
      '\u007f',
      '\ud800',
      '\udc00',
      '😀',
      '\u2028',
      'a',
    )
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: tricky }), fc.string()),
        (s) =>
          argumentsKey([s]) === `(${JSON.stringify(s)})` &&
          argumentsKey([{ [s]: 1 }]) === `({${JSON.stringify(s)}:n:1})`,
      ),
      { seed: 20251207, numRuns: 3000 },
    )
  })

  it('memoize keys: raw keys stay valid and distinct on Memcached and object stores', async () => {
    const r = recorder(newCache())
    const lists: unknown[][] = [
      ['a b'],
      ['a\tb'],
      ['\u007f'],
      ['\u0085'],
      ['\u00a0'],
      ['é'.repeat(RAW_KEY_MAX - 4)],
      ['😀'.repeat((RAW_KEY_MAX - 4) / 2)],
      ['\ud800'],
      ['a//b'],
      ['/'],
      [stringWithBody(RAW_KEY_MAX)],
    ]
    // Longer than the 80 bytes a raw key leaves room for: the backend must hash.
    const namespace = 'n'.repeat(100)
    const wire = new Set<string>()
    const objects = new Set<string>()
    for (const args of lists) {
      const key = await r.key(...args)
      for (const ns of ['', namespace]) {
        const bytes = wireKey(ns, key)
        assert.ok(bytes.length <= 250, `${argumentsKey(args)}: ${bytes.length} bytes`)
        assert.ok(
          bytes.every((c) => c > 0x20 && c !== 0x7f),
          `${argumentsKey(args)} has no space or control byte on the wire`,
        )
        wire.add(bytes.toString('latin1'))
      }
      const name = objectName('cache/', key)
      assert.ok(Buffer.byteLength(name) <= 1024)
      objects.add(name)
    }
    assert.equal(wire.size, lists.length * 2)
    assert.equal(objects.size, lists.length)
  })
})
