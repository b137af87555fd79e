/**
 * Unit tests for src/http/headers.ts and src/http/semantics.ts, written from
 * RFC 9111 (HTTP Caching) and RFC 9110 (HTTP Semantics). Each test names the
 * requirement it checks; where a behaviour is a cachette choice rather than an
 * RFC requirement, the test name says so.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  DELTA_MAX,
  type Directives,
  deltaSeconds,
  type EntityTag,
  formatCacheControl,
  formatHttpDate,
  type HeaderBag,
  headerValue,
  lowerCaseHeaders,
  parseAge,
  parseCacheControl,
  parseETag,
  parseETagList,
  parseHttpDate,
  parseVary,
  strongMatch,
  weakMatch,
} from '../src/http/headers.js'
import {
  type CacheRules,
  currentAge,
  evaluatePreconditions,
  freshnessLifetime,
  initialAge,
  notModifiedHeaders,
  type RequestInfo,
  type ResponseInfo,
  requestControls,
  responseDirectives,
  staleRules,
  storableStatus,
  type Validators,
  whyNotStorable,
} from '../src/http/semantics.js'

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/** A fixed "now": Mon, 15 Jan 2024 12:00:00 GMT. */
const T = Date.UTC(2024, 0, 15, 12, 0, 0)
const SEC = 1000
const DAY = 86_400 * SEC
/** Sun, 06 Nov 1994 08:49:37 GMT, the RFCs' example date. */
const RFC_EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37)

/** An IMF-fixdate for `ms`, built without the code under test. */
const http = (ms: number): string => new Date(ms).toUTCString()

const req = (method: string, headers: HeaderBag = {}): RequestInfo => ({ method, headers })
const get = (headers: HeaderBag = {}): RequestInfo => req('GET', headers)
const res = (status: number, headers: HeaderBag = {}): ResponseInfo => ({ status, headers })
const cc = (value: string): ResponseInfo => res(200, { 'cache-control': value })

const SHARED: CacheRules = { shared: true }
const PRIVATE: CacheRules = { shared: false }

const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ')

/** An rfc850-date for `ms` (weekday and two-digit year computed from it). */
function rfc850(ms: number): string {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, '0')
  const date = `${two(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${two(d.getUTCFullYear() % 100)}`
  const time = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
  return `${LONG_DAYS[d.getUTCDay()]}, ${date} ${time} GMT`
}

const tag = (weak: boolean, opaque: string): EntityTag => ({ weak, tag: `"${opaque}"` })

// ---------------------------------------------------------------------------
// Cache-Control parsing
// ---------------------------------------------------------------------------

describe('Cache-Control parsing (RFC 9111 §5.2, §1.2.2)', () => {
  test('RFC 9111 §5.2: directive names are case-insensitive', () => {
    const d = parseCacheControl('Max-Age=60, NO-STORE, Public')
    assert.equal(d.get('max-age'), '60')
    assert.equal(d.get('no-store'), true)
    assert.equal(d.get('public'), true)
    assert.equal(d.has('Max-Age'), false)
  })

  test('RFC 9111 §5.2: a recipient accepts the quoted-string form of an argument (max-age="60")', () => {
    const d = parseCacheControl('max-age="60"')
    assert.equal(d.get('max-age'), '60')
    assert.equal(deltaSeconds(d.get('max-age')), 60)
    assert.equal(freshnessLifetime(cc('max-age="60"'), T), 60)
  })

  test('RFC 9110 §5.6.1: commas inside a quoted string do not split the list (no-cache="a, b")', () => {
    const d = parseCacheControl('no-cache="a, b", max-age=5')
    assert.equal(d.size, 2)
    assert.equal(d.get('no-cache'), 'a, b')
    assert.equal(d.get('max-age'), '5')
  })

  test('RFC 9110 §5.6.4: a quoted-pair inside a quoted string is unescaped', () => {
    assert.equal(parseCacheControl('ext="a\\"b\\\\c"').get('ext'), 'a"b\\c')
  })

  test('RFC 9111 §5.2.3: unknown extension directives are kept but do not change caching', () => {
    const headers = { 'cache-control': 'x-foo=bar, community="UCI", max-age=60' }
    const d = parseCacheControl(headers['cache-control'])
    assert.equal(d.get('x-foo'), 'bar')
    assert.equal(d.get('community'), 'UCI')
    assert.equal(freshnessLifetime(res(200, headers), T), 60)
    assert.equal(whyNotStorable(get(), res(200, headers)), undefined)
  })

  test('RFC 9111 §5.2: malformed elements are ignored without throwing', () => {
    const d = parseCacheControl('max-age=60=1, =5, "quoted", no-store, ,, private=, a b=1')
    assert.deepEqual([...d.keys()], ['no-store'])
    assert.equal(parseCacheControl('max-age="60').has('max-age'), false, 'unterminated quote')
    assert.equal(parseCacheControl(undefined).size, 0)
    assert.equal(parseCacheControl('').size, 0)
    assert.equal(parseCacheControl(' , ,').size, 0)
  })

  test('RFC 9111 §4.2.1: with a duplicated directive the first occurrence is used', () => {
    assert.equal(parseCacheControl('max-age=60, max-age=120').get('max-age'), '60')
    assert.equal(parseCacheControl('Max-Age=10, max-age=20').get('max-age'), '10')
    assert.equal(freshnessLifetime(cc('max-age=60, max-age=3600'), T), 60)
  })

  test('RFC 9110 §5.3: a field sent on several lines is combined into one list', () => {
    const headers: HeaderBag = { 'cache-control': ['max-age=60', 'public'] }
    const d = parseCacheControl(headerValue(headers, 'cache-control'))
    assert.equal(d.get('max-age'), '60')
    assert.equal(d.get('public'), true)
  })

  test('RFC 9111 §1.2.2: delta-seconds is a non-negative integer (leading zeros allowed)', () => {
    assert.equal(deltaSeconds('0'), 0)
    assert.equal(deltaSeconds('60'), 60)
    assert.equal(deltaSeconds('007'), 7)
  })

  test('RFC 9111 §1.2.2: delta-seconds with a sign, a fraction, garbage or no value is invalid', () => {
    for (const v of ['+60', '-1', '6.5', '60.0', '60s', '1e3', '0x10', ' 60', '', '٣']) {
      assert.equal(deltaSeconds(v), undefined, `deltaSeconds(${JSON.stringify(v)})`)
    }
    assert.equal(deltaSeconds(true), undefined, 'a directive without its argument')
    assert.equal(deltaSeconds(undefined), undefined)
  })

  test('RFC 9111 §1.2.2: a delta-seconds too large to represent saturates at 2^31', () => {
    assert.equal(DELTA_MAX, 2 ** 31)
    assert.equal(deltaSeconds('2147483647'), 2147483647)
    assert.equal(deltaSeconds('2147483648'), 2 ** 31)
    assert.equal(deltaSeconds('2147483649'), 2 ** 31)
    assert.equal(deltaSeconds('99999999999999999999999999'), 2 ** 31)
    assert.equal(freshnessLifetime(cc('max-age=99999999999999'), T), 2 ** 31)
  })

  test('formatCacheControl round-trips a parsed value (names lower-cased, tokens bare)', () => {
    const d = parseCacheControl('Max-Age="60", no-cache="a, b", public')
    const s = formatCacheControl(d)
    assert.equal(s, 'max-age=60, no-cache="a, b", public')
    assert.deepEqual([...parseCacheControl(s)], [...d])
  })

  test('formatCacheControl quotes non-token values and escapes quotes and backslashes', () => {
    const d: Directives = new Map<string, string | true>([
      ['ext', 'a"b\\c'],
      ['empty', ''],
    ])
    const s = formatCacheControl(d)
    assert.equal(s, 'ext="a\\"b\\\\c", empty=""')
    assert.deepEqual([...parseCacheControl(s)], [...d])
  })

  test('RFC 9110 §5.1: field names are case-insensitive (lowerCaseHeaders merges them)', () => {
    const out = lowerCaseHeaders({
      'Cache-Control': 'max-age=1',
      ETag: '"a"',
      'X-A': 'b',
      'x-a': 'c',
    })
    assert.deepEqual(Object.keys(out).sort(), ['cache-control', 'etag', 'x-a'])
    assert.equal(out.etag, '"a"')
    assert.deepEqual(out['x-a'], ['b', 'c'])
  })
})

// ---------------------------------------------------------------------------
// HTTP-date
// ---------------------------------------------------------------------------

describe('HTTP-date (RFC 9110 §5.6.7)', () => {
  test('RFC 9110 §5.6.7: IMF-fixdate is accepted', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), RFC_EXAMPLE)
  })

  test('RFC 9110 §5.6.7: the obsolete RFC 850 form is accepted', () => {
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), RFC_EXAMPLE)
  })

  test('RFC 9110 §5.6.7: the obsolete asctime form is accepted (space-padded or two-digit day)', () => {
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), RFC_EXAMPLE)
    assert.equal(parseHttpDate('Sun Nov 06 08:49:37 1994'), RFC_EXAMPLE)
  })

  test('RFC 9110 §5.6.7: an RFC 850 two-digit year of the current year is in this century', () => {
    const ms = Date.UTC(new Date().getUTCFullYear(), 0, 1, 0, 0, 0)
    assert.equal(parseHttpDate(rfc850(ms)), ms)
  })

  test('RFC 9110 §5.6.7: an RFC 850 date more than 50 years in the future is in the past century', () => {
    // 31 Dec of (this year + 50) is more than 50 years ahead (except during the
    // very last second of this year), so it MUST be read as (this year − 50).
    const year = new Date().getUTCFullYear()
    const expected = Date.UTC(year - 50, 11, 31, 23, 59, 59)
    assert.equal(parseHttpDate(rfc850(expected)), expected)
  })

  test('RFC 9110 §5.6.7: a four-digit year is taken literally (0050 is not 1950)', () => {
    const d = new Date(0)
    d.setUTCFullYear(50, 0, 1)
    assert.equal(parseHttpDate('Sat, 01 Jan 0050 00:00:00 GMT'), d.getTime())
  })

  test('RFC 9110 §5.6.7: ISO 8601, "0", "-1", empty and other non-HTTP-date forms are rejected', () => {
    for (const v of [
      '0',
      '-1',
      '',
      '1994-11-06T08:49:37Z',
      '1994-11-06',
      '784111777',
      'Sun Nov 06 1994 08:49:37 GMT+0000 (Coordinated Universal Time)',
      'Sunday, 06 Nov 1994 08:49:37 GMT',
      'Sun, 06 Nov 94 08:49:37 GMT',
      'Sun, 6 Nov 1994 08:49:37 GMT',
    ]) {
      assert.equal(parseHttpDate(v), undefined, v)
    }
    assert.equal(parseHttpDate(undefined), undefined)
  })

  test('RFC 9110 §5.6.7: an IMF-fixdate without GMT (or with another zone) is rejected', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37'), undefined)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 UTC'), undefined)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 +0000'), undefined)
  })

  test('RFC 9111 §4.2: a cache matches HTTP-dates case-insensitively (lower- or upper-case month, day, GMT)', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37)
    assert.equal(parseHttpDate('Sun, 06 nov 1994 08:49:37 GMT'), t)
    assert.equal(parseHttpDate('sun, 06 Nov 1994 08:49:37 GMT'), t)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 gmt'), t)
    assert.equal(parseHttpDate('SUN, 06 NOV 1994 08:49:37 GMT'), t)
    assert.equal(parseHttpDate('sunday, 06-nov-94 08:49:37 gmt'), t)
    assert.equal(parseHttpDate('sun nov  6 08:49:37 1994'), t)
    assert.equal(
      parseHttpDate('Sun, 06 Nox 1994 08:49:37 GMT'),
      undefined,
      'not a month in any case',
    )
  })

  test('RFC 9110 §5.6.7: extra whitespace inside an HTTP-date is rejected', () => {
    assert.equal(parseHttpDate('Sun,  06 Nov 1994 08:49:37 GMT'), undefined)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994  08:49:37 GMT'), undefined)
    assert.equal(parseHttpDate('Sun, 06  Nov 1994 08:49:37 GMT'), undefined)
  })

  test('RFC 9110 §5.6.7: a day that does not exist in its month, or an impossible time, is rejected', () => {
    assert.equal(parseHttpDate('Wed, 30 Feb 2022 00:00:00 GMT'), undefined)
    assert.equal(parseHttpDate('Tue, 29 Feb 2022 00:00:00 GMT'), undefined)
    assert.equal(parseHttpDate('Sun, 31 Apr 2022 00:00:00 GMT'), undefined)
    assert.equal(parseHttpDate('Sat, 00 Jan 2022 00:00:00 GMT'), undefined)
    assert.equal(parseHttpDate('Tue, 32 Jan 2022 00:00:00 GMT'), undefined)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 24:00:00 GMT'), undefined)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:60:00 GMT'), undefined)
    assert.equal(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT'), Date.UTC(2024, 1, 29), 'leap day')
  })

  test('RFC 9110 §5.6.7: formatHttpDate produces IMF-fixdate (one-second resolution)', () => {
    assert.equal(formatHttpDate(RFC_EXAMPLE), 'Sun, 06 Nov 1994 08:49:37 GMT')
    assert.equal(formatHttpDate(RFC_EXAMPLE + 999), 'Sun, 06 Nov 1994 08:49:37 GMT')
    assert.equal(formatHttpDate(Date.UTC(2024, 2, 3, 4, 5, 6)), 'Sun, 03 Mar 2024 04:05:06 GMT')
    for (const ms of [0, T + 123, RFC_EXAMPLE + 999, Date.UTC(2099, 11, 31, 23, 59, 59, 500)]) {
      assert.equal(parseHttpDate(formatHttpDate(ms)), Math.floor(ms / 1000) * 1000)
    }
  })
})

// ---------------------------------------------------------------------------
// Age header
// ---------------------------------------------------------------------------

describe('Age field (RFC 9111 §5.1)', () => {
  test('RFC 9111 §5.1: Age is a non-negative integer number of seconds', () => {
    assert.equal(parseAge('0'), 0)
    assert.equal(parseAge('60'), 60)
  })

  test('RFC 9111 §5.1: a fractional (7200.0) or negative (-5) Age is invalid and ignored', () => {
    assert.equal(parseAge('7200.0'), undefined)
    assert.equal(parseAge('-5'), undefined)
  })

  test('RFC 9111 §5.1: a non-numeric or empty Age is invalid and ignored', () => {
    assert.equal(parseAge('abc'), undefined)
    assert.equal(parseAge(''), undefined)
    assert.equal(parseAge('"60"'), undefined)
    assert.equal(parseAge(undefined), undefined)
  })

  test('RFC 9111 §5.1: a list-based Age uses its first member (ignored if that is invalid)', () => {
    assert.equal(parseAge('60, 120'), 60)
    assert.equal(parseAge(headerValue({ age: ['30', '90'] }, 'age')), 30)
    assert.equal(parseAge('abc, 60'), undefined)
  })

  test('RFC 9111 §1.2.2: an Age too large to represent saturates at 2^31', () => {
    assert.equal(parseAge('99999999999999'), 2 ** 31)
  })
})

// ---------------------------------------------------------------------------
// Entity tags
// ---------------------------------------------------------------------------

describe('Entity tags (RFC 9110 §8.8.3)', () => {
  test('RFC 9110 §8.8.3: a strong entity tag is a quoted opaque-tag (possibly empty)', () => {
    assert.deepEqual(parseETag('"xyzzy"'), { weak: false, tag: '"xyzzy"' })
    assert.deepEqual(parseETag('""'), { weak: false, tag: '""' })
  })

  test('RFC 9110 §8.8.3: a weak entity tag has the W/ prefix', () => {
    assert.deepEqual(parseETag('W/"xyzzy"'), { weak: true, tag: '"xyzzy"' })
  })

  test('RFC 9110 §8.8.3: the weakness indicator is case-sensitive (w/ is malformed)', () => {
    assert.equal(parseETag('w/"xyzzy"'), undefined)
  })

  test('RFC 9110 §8.8.3: malformed entity tags are rejected', () => {
    for (const v of [
      'xyzzy',
      '"xy"zzy"',
      '"xy zzy"',
      '"xyzzy',
      'xyzzy"',
      'W/xyzzy',
      'W/ "xyzzy"',
      "'xyzzy'",
      '*',
      '',
    ]) {
      assert.equal(parseETag(v), undefined, JSON.stringify(v))
    }
    assert.equal(parseETag(undefined), undefined)
  })

  test('RFC 9110 §13.1.2: If-None-Match: * is recognised', () => {
    assert.equal(parseETagList('*'), '*')
    assert.equal(parseETagList(' * '), '*')
  })

  test('RFC 9110 §13.1.2 / §8.8.3: a tag list keeps weak and strong members (and commas inside tags)', () => {
    assert.deepEqual(parseETagList('"a", W/"b"'), [tag(false, 'a'), tag(true, 'b')])
    assert.deepEqual(parseETagList('"a,b", "c"'), [tag(false, 'a,b'), tag(false, 'c')])
  })

  test('RFC 9110 §13.1.2: malformed list members are dropped, valid ones kept', () => {
    assert.deepEqual(parseETagList('"a", bogus, W/"b", w/"c", "d'), [
      tag(false, 'a'),
      tag(true, 'b'),
    ])
    assert.equal(parseETagList('bogus, also-bogus'), undefined)
    assert.equal(parseETagList(''), undefined)
    assert.equal(parseETagList(undefined), undefined)
  })

  test('RFC 9110 §8.8.3.2: W/"1" vs W/"1" — no strong match, weak match', () => {
    assert.equal(strongMatch(tag(true, '1'), tag(true, '1')), false)
    assert.equal(weakMatch(tag(true, '1'), tag(true, '1')), true)
  })

  test('RFC 9110 §8.8.3.2: W/"1" vs W/"2" — no strong match, no weak match', () => {
    assert.equal(strongMatch(tag(true, '1'), tag(true, '2')), false)
    assert.equal(weakMatch(tag(true, '1'), tag(true, '2')), false)
  })

  test('RFC 9110 §8.8.3.2: W/"1" vs "1" — no strong match, weak match (both orders)', () => {
    assert.equal(strongMatch(tag(true, '1'), tag(false, '1')), false)
    assert.equal(strongMatch(tag(false, '1'), tag(true, '1')), false)
    assert.equal(weakMatch(tag(true, '1'), tag(false, '1')), true)
    assert.equal(weakMatch(tag(false, '1'), tag(true, '1')), true)
  })

  test('RFC 9110 §8.8.3.2: "1" vs "1" — strong match, weak match', () => {
    assert.equal(strongMatch(tag(false, '1'), tag(false, '1')), true)
    assert.equal(weakMatch(tag(false, '1'), tag(false, '1')), true)
  })

  test('RFC 9110 §8.8.3.2: opaque-tags are compared case-sensitively', () => {
    assert.equal(strongMatch(tag(false, 'a'), tag(false, 'A')), false)
    assert.equal(weakMatch(tag(false, 'a'), tag(false, 'A')), false)
  })
})

// ---------------------------------------------------------------------------
// Vary
// ---------------------------------------------------------------------------

describe('Vary (RFC 9110 §12.5.5, RFC 9111 §4.1)', () => {
  test('RFC 9110 §12.5.5: Vary field names are case-insensitive (lower-cased)', () => {
    assert.deepEqual(parseVary('Accept-Encoding, ACCEPT-LANGUAGE'), [
      'accept-encoding',
      'accept-language',
    ])
  })

  test('RFC 9110 §12.5.5: Vary: * (alone or in a list) is reported as ["*"]', () => {
    assert.deepEqual(parseVary('*'), ['*'])
    assert.deepEqual(parseVary('Accept, *'), ['*'])
  })

  test('RFC 9110 §12.5.5: duplicate names (in any case) are listed once', () => {
    assert.deepEqual(parseVary('Accept, accept, ACCEPT, Origin'), ['accept', 'origin'])
  })

  test('RFC 9110 §12.5.5: an absent or empty Vary lists nothing', () => {
    assert.deepEqual(parseVary(undefined), [])
    assert.deepEqual(parseVary(''), [])
  })
})

// ---------------------------------------------------------------------------
// Storability
// ---------------------------------------------------------------------------

describe('Storing responses (whyNotStorable, RFC 9111 §3)', () => {
  const lastModified = http(T - 10 * DAY)

  test('cachette choice (RFC 9111 §3 lets a cache pick the methods it understands): only GET is stored', () => {
    assert.equal(whyNotStorable(get(), cc('public, max-age=60')), undefined)
    for (const method of ['POST', 'HEAD', 'PUT', 'DELETE', 'get']) {
      assert.notEqual(whyNotStorable(req(method), cc('public, max-age=60')), undefined, method)
    }
  })

  test('RFC 9111 §5.2.1.5: a request no-store prevents storing the response', () => {
    assert.notEqual(
      whyNotStorable(get({ 'cache-control': 'no-store' }), cc('max-age=60')),
      undefined,
    )
    assert.notEqual(
      whyNotStorable(get({ 'cache-control': 'No-Store' }), cc('max-age=60')),
      undefined,
    )
  })

  test('RFC 9111 §5.2.2.5: a response no-store prevents storing', () => {
    assert.notEqual(whyNotStorable(get(), cc('no-store, max-age=60')), undefined)
    assert.notEqual(whyNotStorable(get(), cc('max-age=60, NO-STORE')), undefined)
  })

  test('RFC 9111 §5.2.2.3: must-understand with an understood status overrides no-store', () => {
    assert.equal(whyNotStorable(get(), cc('must-understand, no-store, max-age=60')), undefined)
  })

  test('RFC 9111 §5.2.2.3: must-understand with a status the cache does not understand (299, 206) prevents storing', () => {
    for (const status of [299, 206]) {
      for (const v of ['must-understand, no-store, max-age=60', 'must-understand, max-age=60']) {
        assert.notEqual(whyNotStorable(get(), res(status, { 'cache-control': v })), undefined)
      }
    }
  })

  test('RFC 9111 §5.2.2.7: a shared cache does not store a private response', () => {
    assert.notEqual(whyNotStorable(get(), cc('private, max-age=60'), SHARED), undefined)
    assert.notEqual(
      whyNotStorable(get(), cc('private, max-age=60')),
      undefined,
      'shared by default',
    )
  })

  test('RFC 9111 §5.2.2.7: a private (non-shared) cache may store a private response', () => {
    assert.equal(whyNotStorable(get(), cc('private, max-age=60'), PRIVATE), undefined)
  })

  test('RFC 9111 §5.2.2.7: a qualified private does not prevent storing (cachette strips the listed fields)', () => {
    assert.equal(whyNotStorable(get(), cc('private="x-user", max-age=60'), SHARED), undefined)
  })

  test('RFC 9111 §3.5: a shared cache does not store an Authorization response without public/s-maxage/must-revalidate', () => {
    const auth = get({ authorization: 'Bearer x' })
    assert.notEqual(whyNotStorable(auth, cc('max-age=60'), SHARED), undefined)
  })

  test('RFC 9111 §3.5: public, s-maxage or must-revalidate each permit storing an Authorization response', () => {
    const auth = get({ authorization: 'Bearer x' })
    assert.equal(whyNotStorable(auth, cc('public, max-age=60'), SHARED), undefined)
    assert.equal(whyNotStorable(auth, cc('s-maxage=60'), SHARED), undefined)
    assert.equal(whyNotStorable(auth, cc('must-revalidate, max-age=60'), SHARED), undefined)
  })

  test('RFC 9111 §3.5: the Authorization rule applies only to shared caches', () => {
    const auth = get({ authorization: 'Bearer x' })
    assert.equal(whyNotStorable(auth, cc('max-age=60'), PRIVATE), undefined)
  })

  test('cachette choice (not an RFC MUST): a shared cache stores a Set-Cookie response only with public or s-maxage', () => {
    const withCookie = (v: string) =>
      res(200, { 'cache-control': v, 'set-cookie': ['sid=1; HttpOnly'] })
    assert.notEqual(whyNotStorable(get(), withCookie('max-age=60'), SHARED), undefined)
    assert.equal(whyNotStorable(get(), withCookie('public, max-age=60'), SHARED), undefined)
    assert.equal(whyNotStorable(get(), withCookie('s-maxage=60'), SHARED), undefined)
    assert.equal(whyNotStorable(get(), withCookie('max-age=60'), PRIVATE), undefined, 'private')
  })

  test('RFC 9111 §4.1: a response with Vary: * is not stored (it can never match)', () => {
    const vary = (v: string) => res(200, { 'cache-control': 'max-age=60', vary: v })
    assert.notEqual(whyNotStorable(get(), vary('*')), undefined)
    assert.notEqual(whyNotStorable(get(), vary('Accept-Encoding, *')), undefined)
    assert.equal(whyNotStorable(get(), vary('Accept-Encoding')), undefined, 'a field-name Vary')
  })

  test('cachette choice (no default caching): without explicit freshness or Last-Modified a 200 is not stored', () => {
    assert.notEqual(whyNotStorable(get(), res(200)), undefined)
    assert.notEqual(whyNotStorable(get(), res(200, { etag: '"a"', date: http(T) })), undefined)
  })

  test('RFC 9111 §4.2.2: with Last-Modified, a heuristically cacheable status (200, 404) is stored', () => {
    assert.equal(whyNotStorable(get(), res(200, { 'last-modified': lastModified })), undefined)
    assert.equal(whyNotStorable(get(), res(404, { 'last-modified': lastModified })), undefined)
  })

  test('RFC 9111 §4.2.2: heuristic freshness is not used for 302 or 307 (not heuristically cacheable)', () => {
    assert.notEqual(whyNotStorable(get(), res(302, { 'last-modified': lastModified })), undefined)
    assert.notEqual(whyNotStorable(get(), res(307, { 'last-modified': lastModified })), undefined)
  })

  test('RFC 9111 §3: explicit freshness makes a non-heuristic status (302) storable', () => {
    assert.equal(whyNotStorable(get(), res(302, { 'cache-control': 'max-age=60' })), undefined)
  })

  test('RFC 9111 §4.2.2: heuristic storing needs a valid Last-Modified and a non-zero heuristicFraction', () => {
    const r = res(200, { 'last-modified': lastModified })
    assert.notEqual(whyNotStorable(get(), r, { heuristicFraction: 0 }), undefined)
    const invalid = res(200, { 'last-modified': '2024-01-01' })
    assert.notEqual(whyNotStorable(get(), invalid), undefined)
  })

  test('RFC 9111 §3: an Expires field permits storing, even an invalid one (already expired, §5.3)', () => {
    assert.equal(whyNotStorable(get(), res(200, { expires: http(T + DAY) })), undefined)
    assert.equal(whyNotStorable(get(), res(200, { expires: '0' })), undefined)
  })

  test('RFC 9111 §3: s-maxage permits storing only in a shared cache (302 with s-maxage, private cache)', () => {
    const r = res(302, { 'cache-control': 's-maxage=60' })
    assert.equal(whyNotStorable(get(), r, SHARED), undefined)
    assert.notEqual(whyNotStorable(get(), r, PRIVATE), undefined)
  })

  test('RFC 9111 §3: no-cache alone does not make a non-heuristically-cacheable status (302) storable', () => {
    assert.notEqual(whyNotStorable(get(), res(302, { 'cache-control': 'no-cache' })), undefined)
  })

  test('RFC 9111 §3: every final status with explicit freshness is storable (299, 4xx, 5xx, 599)', () => {
    for (const status of [201, 299, 400, 401, 403, 409, 429, 500, 502, 503, 599]) {
      for (const v of ['max-age=60', 'public', 's-maxage=60']) {
        assert.equal(
          whyNotStorable(get(), res(status, { 'cache-control': v })),
          undefined,
          `${status} ${v}`,
        )
      }
      const expires = { expires: http(T + 60 * SEC), date: http(T) }
      assert.equal(whyNotStorable(get(), res(status, expires)), undefined, `${status} Expires`)
      assert.ok(storableStatus(status), String(status))
    }
    for (const status of [100, 103, 199, 206, 304, 600, 200.5])
      assert.ok(!storableStatus(status), String(status))
  })

  test('RFC 9111 §4.2.2: heuristic freshness stays limited to the heuristically cacheable statuses', () => {
    const lm = { 'last-modified': http(T - 10 * DAY), date: http(T) }
    for (const status of [200, 404, 410, 501]) {
      assert.equal(whyNotStorable(get(), res(status, lm)), undefined, String(status))
      assert.ok(freshnessLifetime(res(status, lm), T) > 0, String(status))
    }
    for (const status of [201, 302, 403, 500, 503, 599]) {
      assert.notEqual(whyNotStorable(get(), res(status, lm)), undefined, String(status))
      assert.equal(freshnessLifetime(res(status, lm), T), 0, String(status))
    }
  })

  test('RFC 9111 §3: 206 Partial Content is never stored (no range support)', () => {
    const r = res(206, { 'cache-control': 'public, max-age=60', 'content-range': 'bytes 0-9/100' })
    assert.notEqual(whyNotStorable(get(), r), undefined)
  })

  test('RFC 9111 §4.3.4: a 304 is never stored as a response in its own right', () => {
    assert.notEqual(whyNotStorable(get(), res(304, { 'cache-control': 'max-age=60' })), undefined)
  })
})

// ---------------------------------------------------------------------------
// Targeted cache control
// ---------------------------------------------------------------------------

describe('Targeted cache control (responseDirectives, RFC 9213 §2.2)', () => {
  const CDN: CacheRules = { shared: true, targetedFields: ['cdn-cache-control'] }
  const cdn = (cc: string | undefined, targeted: string, extra: HeaderBag = {}): ResponseInfo =>
    res(200, {
      ...(cc === undefined ? {} : { 'cache-control': cc }),
      'cdn-cache-control': targeted,
      ...extra,
    })

  test('RFC 9213 §2.2: a valid targeted field replaces Cache-Control for storing, freshness and staleness', () => {
    assert.equal(whyNotStorable(get(), cdn('no-store', 'max-age=600'), CDN), undefined)
    assert.equal(freshnessLifetime(cdn('max-age=5', 'max-age=600'), T, CDN), 600)
    assert.notEqual(whyNotStorable(get(), cdn('max-age=60', 'no-store'), CDN), undefined)
    assert.notEqual(whyNotStorable(get(), cdn('public, max-age=60', 'private'), CDN), undefined)
    assert.equal(freshnessLifetime(cdn('max-age=60', 'no-cache, max-age=60'), T, CDN), 0)
    assert.equal(staleRules(cdn(undefined, 'max-age=1, must-revalidate'), CDN).mustRevalidate, true)
    assert.equal(staleRules(cdn('must-revalidate', 'max-age=1'), CDN).mustRevalidate, false)
  })

  test('a cachette choice: Cache-Control: private still keeps a response out under a targeted field (it says whose the page is)', () => {
    assert.notEqual(whyNotStorable(get(), cdn('private', 'max-age=600'), CDN), undefined)
    assert.notEqual(
      whyNotStorable(get(), cdn('private, max-age=60', 'public, max-age=600'), CDN),
      undefined,
    )
    assert.equal(
      whyNotStorable(get(), cdn('private', 'max-age=600'), { ...CDN, shared: false }),
      undefined,
    )
    assert.equal(
      whyNotStorable(get(), cdn('no-store', 'max-age=600'), CDN),
      undefined,
      'no-store is overridden (RFC 9213 §3.1)',
    )
  })

  test('RFC 9213 §2.2: Expires is ignored when a targeted field governs', () => {
    const r = cdn(undefined, 'max-age=10', { expires: http(T + DAY), date: http(T) })
    assert.equal(freshnessLifetime(r, T, CDN), 10)
    assert.equal(freshnessLifetime(r, T), 86_400, 'without a target list, Expires counts')
  })

  test('RFC 9213 §2.2: an invalid or empty targeted field falls back to Cache-Control', () => {
    for (const bad of ['Max-Age=60', 'max-age=60,', '']) {
      const r = cdn('max-age=5', bad)
      assert.equal(responseDirectives(r, CDN).targeted, false, bad)
      assert.equal(freshnessLifetime(r, T, CDN), 5, bad)
    }
  })

  test('RFC 9213 §2.2: the functions obey no targeted field unless given a target list', () => {
    assert.notEqual(whyNotStorable(get(), cdn('no-store', 'max-age=600')), undefined)
    assert.equal(responseDirectives(cdn('no-store', 'max-age=600')).targeted, false)
  })
})

// ---------------------------------------------------------------------------
// Freshness lifetime
// ---------------------------------------------------------------------------

describe('Freshness lifetime (freshnessLifetime, RFC 9111 §4.2.1, §4.2.2)', () => {
  const dated = (headers: HeaderBag, status = 200): ResponseInfo =>
    res(status, { date: http(T), ...headers })

  test('RFC 9111 §4.2.1: s-maxage overrides max-age (and Expires) in a shared cache', () => {
    assert.equal(freshnessLifetime(cc('max-age=60, s-maxage=30'), T, SHARED), 30)
    assert.equal(freshnessLifetime(cc('max-age=60, s-maxage=300'), T, SHARED), 300)
    const r = dated({ 'cache-control': 's-maxage=60', expires: http(T + 3600 * SEC) })
    assert.equal(freshnessLifetime(r, T, SHARED), 60)
  })

  test('RFC 9111 §5.2.2.10: s-maxage is ignored by a private cache', () => {
    assert.equal(freshnessLifetime(cc('max-age=60, s-maxage=30'), T, PRIVATE), 60)
    assert.equal(freshnessLifetime(cc('s-maxage=30'), T, PRIVATE), 0)
  })

  test('RFC 9111 §4.2.1: max-age overrides Expires', () => {
    const r = dated({ 'cache-control': 'max-age=60', expires: http(T + 3600 * SEC) })
    assert.equal(freshnessLifetime(r, T), 60)
  })

  test('RFC 9111 §4.2.1: without max-age, the lifetime is Expires minus Date', () => {
    assert.equal(freshnessLifetime(dated({ expires: http(T + 3600 * SEC) }), T), 3600)
  })

  test('RFC 9111 §4.2.1: Expires is measured from Date, not from the response time', () => {
    const r = res(200, { date: http(T - 100 * SEC), expires: http(T + 3600 * SEC) })
    assert.equal(freshnessLifetime(r, T), 3700)
  })

  test('RFC 9111 §4.2.1 / RFC 9110 §6.6.1: Expires without Date is measured from the response time', () => {
    const r = res(200, { expires: http(T + 600 * SEC) })
    assert.equal(freshnessLifetime(r, T), 600)
    assert.equal(freshnessLifetime(r, T + 100 * SEC), 500)
  })

  test('RFC 9111 §5.3: an Expires in the past gives a lifetime of 0 (never negative)', () => {
    assert.equal(freshnessLifetime(dated({ expires: http(T - 3600 * SEC) }), T), 0)
  })

  test('RFC 9111 §5.3: an invalid Expires ("0", garbage, ISO date) means already expired', () => {
    const r = dated({ expires: '0', 'last-modified': http(T - 10 * DAY) })
    assert.equal(freshnessLifetime(r, T), 0)
    assert.equal(freshnessLifetime(dated({ expires: 'never' }), T), 0)
    assert.equal(freshnessLifetime(dated({ expires: '2099-01-01T00:00:00Z' }), T), 0)
  })

  test('RFC 9111 §4.2.2: heuristic freshness is 10% of (Date − Last-Modified) by default (0 if in the future)', () => {
    assert.equal(freshnessLifetime(dated({ 'last-modified': http(T - 1000 * SEC) }), T), 100)
    assert.equal(freshnessLifetime(dated({ 'last-modified': http(T + DAY) }), T), 0)
  })

  test('RFC 9111 §4.2.2: heuristic freshness is capped (default one day); the fraction is configurable', () => {
    const old = dated({ 'last-modified': http(T - 100 * DAY) })
    assert.equal(freshnessLifetime(old, T), 86_400)
    assert.equal(freshnessLifetime(old, T, { heuristicMax: 3600 }), 3600)
    const recent = dated({ 'last-modified': http(T - 1000 * SEC) })
    assert.equal(freshnessLifetime(recent, T, { heuristicFraction: 0.5 }), 500)
    assert.equal(freshnessLifetime(recent, T, { heuristicFraction: 0 }), 0)
  })

  test('RFC 9111 §4.2.2: heuristic freshness without Date uses the response time', () => {
    const r = res(200, { 'last-modified': http(T - 1000 * SEC) })
    assert.equal(freshnessLifetime(r, T), 100)
  })

  test('RFC 9111 §4.2.2: no heuristic freshness for a status that is not heuristically cacheable (302)', () => {
    assert.equal(freshnessLifetime(dated({ 'last-modified': http(T - 10 * DAY) }, 302), T), 0)
  })

  test('RFC 9111 §5.2.2.4: no-cache gives a freshness lifetime of 0 (always revalidate)', () => {
    assert.equal(freshnessLifetime(cc('no-cache, max-age=60'), T), 0)
    assert.equal(freshnessLifetime(cc('max-age=60, s-maxage=60, No-Cache'), T), 0)
  })

  test('RFC 9111 §4.2.1: an invalid max-age makes the response stale (lifetime 0), not Expires-based', () => {
    const r = dated({ 'cache-control': 'max-age=abc', expires: http(T + 3600 * SEC) })
    assert.equal(freshnessLifetime(r, T), 0)
    assert.equal(freshnessLifetime(cc('max-age=-1'), T), 0)
    assert.equal(freshnessLifetime(cc('max-age=1.5'), T), 0)
  })

  test('RFC 9111 §4.2.1: an invalid s-maxage makes the response stale in a shared cache, even with a valid max-age', () => {
    assert.equal(freshnessLifetime(cc('s-maxage=abc, max-age=60'), T, SHARED), 0)
  })

  test('RFC 9111 §4.2.1: max-age=0 and a response with no freshness information have lifetime 0', () => {
    assert.equal(freshnessLifetime(cc('max-age=0'), T), 0)
    assert.equal(freshnessLifetime(dated({}), T), 0)
  })
})

// ---------------------------------------------------------------------------
// Age calculation
// ---------------------------------------------------------------------------

describe('Age calculation (initialAge, currentAge, RFC 9111 §4.2.3)', () => {
  const requestTime = T - 2 * SEC
  const responseTime = T

  test('RFC 9111 §4.2.3: apparent_age is response_time − Date', () => {
    const r = res(200, { date: http(T - 10 * SEC) })
    assert.equal(initialAge(r, requestTime, responseTime), 10)
  })

  test('RFC 9111 §4.2.3: corrected_age_value is Age + response_delay (first member of a list)', () => {
    assert.equal(initialAge(res(200, { date: http(T), age: '5' }), requestTime, responseTime), 7)
    const list = res(200, { date: http(T), age: '5, 100' })
    assert.equal(initialAge(list, requestTime, responseTime), 7)
  })

  test('RFC 9111 §4.2.3: corrected_initial_age is the larger of apparent_age and corrected_age_value', () => {
    const r = res(200, { date: http(T - 10 * SEC), age: '30' })
    assert.equal(initialAge(r, requestTime, responseTime), 32)
    const r2 = res(200, { date: http(T - 60 * SEC), age: '30' })
    assert.equal(initialAge(r2, requestTime, responseTime), 60)
  })

  test('RFC 9111 §4.2.3: a Date in the future gives an apparent_age of 0, not a negative one', () => {
    const r = res(200, { date: http(T + 60 * SEC) })
    assert.equal(initialAge(r, requestTime, responseTime), 2)
  })

  test('RFC 9111 §5.1: an invalid Age is ignored in the age calculation', () => {
    for (const age of ['7200.0', '-5', 'abc', '']) {
      const r = res(200, { date: http(T), age })
      assert.equal(initialAge(r, requestTime, responseTime), 2, age)
    }
  })

  test('RFC 9111 §4.2.3: without Date, the age is Age + response_delay', () => {
    assert.equal(initialAge(res(200, { age: '3' }), requestTime, responseTime), 5)
    assert.equal(initialAge(res(200), requestTime, responseTime), 2)
  })

  test('RFC 9111 §4.2.3: current_age adds the resident time', () => {
    assert.equal(currentAge(7, T, T + 10 * SEC), 17)
    assert.equal(currentAge(0, T, T), 0)
  })

  test('RFC 9111 §4.2.3: current_age is in whole seconds (rounded down), never below the initial age', () => {
    assert.equal(currentAge(7.5, T, T + 1400), 8)
    assert.equal(currentAge(2, T, T + 999), 2)
    assert.equal(currentAge(7, T, T - 60 * SEC), 7, 'a clock behind the response time')
  })
})

// ---------------------------------------------------------------------------
// Request directives
// ---------------------------------------------------------------------------

describe('Request directives (requestControls, RFC 9111 §5.2.1, §5.4)', () => {
  const controls = (cacheControl: string) => requestControls(get({ 'cache-control': cacheControl }))

  test('RFC 9111 §5.2.1: a request without Cache-Control sets no controls', () => {
    assert.deepEqual(requestControls(get()), {
      noCache: false,
      noStore: false,
      onlyIfCached: false,
      maxAge: undefined,
      maxStale: undefined,
      minFresh: undefined,
    })
  })

  test('RFC 9111 §5.2.1.4: request no-cache', () => {
    assert.equal(controls('no-cache').noCache, true)
    assert.equal(controls('No-Cache').noCache, true)
  })

  test('RFC 9111 §5.4: Pragma: no-cache acts as no-cache when there is no Cache-Control', () => {
    assert.equal(requestControls(get({ pragma: 'no-cache' })).noCache, true)
    assert.equal(requestControls(get({ pragma: 'foo, no-cache' })).noCache, true)
  })

  test('RFC 9111 §5.4: Pragma is ignored when Cache-Control is present; other Pragma values mean nothing', () => {
    const r = get({ pragma: 'no-cache', 'cache-control': 'max-age=60' })
    assert.equal(requestControls(r).noCache, false)
    assert.equal(requestControls(get({ pragma: 'no-cache-please' })).noCache, false)
    assert.equal(requestControls(get({ pragma: 'x-foo=no-cache' })).noCache, false)
  })

  test('RFC 9111 §5.2.1.2: a bare max-stale accepts any staleness', () => {
    assert.equal(controls('max-stale').maxStale, Number.POSITIVE_INFINITY)
  })

  test('RFC 9111 §5.2.1.2: max-stale=N limits staleness to N seconds; an invalid value is ignored', () => {
    assert.equal(controls('max-stale=30').maxStale, 30)
    assert.equal(controls('max-stale="30"').maxStale, 30)
    assert.equal(controls('max-stale=-1').maxStale, undefined)
  })

  test('RFC 9111 §5.2.1.3: min-fresh', () => {
    assert.equal(controls('min-fresh=10').minFresh, 10)
    assert.equal(controls('min-fresh').minFresh, undefined)
  })

  test('RFC 9111 §5.2.1.1: request max-age (including 0)', () => {
    assert.equal(controls('max-age=0').maxAge, 0)
    assert.equal(controls('max-age=120').maxAge, 120)
  })

  test('RFC 9111 §5.2.1.7: only-if-cached', () => {
    assert.equal(controls('only-if-cached').onlyIfCached, true)
    assert.equal(controls('max-age=1').onlyIfCached, false)
  })

  test('RFC 9111 §5.2.1.5: request no-store', () => {
    assert.equal(controls('no-store').noStore, true)
    assert.equal(requestControls(get({ pragma: 'no-cache' })).noStore, false)
  })
})

// ---------------------------------------------------------------------------
// Serving stale
// ---------------------------------------------------------------------------

describe('Serving stale (staleRules, RFC 9111 §4.2.4, §5.2.2; RFC 5861)', () => {
  test('RFC 9111 §5.2.2.2: must-revalidate forbids serving stale (shared and private)', () => {
    assert.equal(staleRules(cc('must-revalidate'), true).mustRevalidate, true)
    assert.equal(staleRules(cc('must-revalidate'), false).mustRevalidate, true)
    assert.equal(staleRules(cc('max-age=60'), true).mustRevalidate, false, 'absent')
  })

  test('RFC 9111 §5.2.2.8: proxy-revalidate applies only to a shared cache', () => {
    assert.equal(staleRules(cc('proxy-revalidate'), true).mustRevalidate, true)
    assert.equal(staleRules(cc('proxy-revalidate'), false).mustRevalidate, false)
  })

  test('RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate, only in a shared cache', () => {
    assert.equal(staleRules(cc('s-maxage=60'), true).mustRevalidate, true)
    assert.equal(staleRules(cc('s-maxage=60'), false).mustRevalidate, false)
  })

  test('RFC 9111 §5.2.2.4: a bare no-cache is reported; a qualified one is not (cachette strips the listed fields)', () => {
    assert.equal(staleRules(cc('no-cache')).noCache, true)
    assert.equal(staleRules(cc('no-cache="set-cookie"')).noCache, false)
    assert.equal(staleRules(res(200)).noCache, false)
  })

  test('RFC 5861 §3, §4: stale-while-revalidate and stale-if-error values', () => {
    const r = staleRules(cc('max-age=60, stale-while-revalidate=30'))
    assert.equal(r.staleWhileRevalidate, 30)
    assert.equal(r.staleIfError, undefined)
    const r2 = staleRules(cc('max-age=60, stale-if-error=600'))
    assert.equal(r2.staleIfError, 600)
    assert.equal(r2.staleWhileRevalidate, undefined)
  })

  test('RFC 5861 / RFC 9111 §1.2.2: invalid stale-while-revalidate / stale-if-error values are ignored', () => {
    const r = staleRules(cc('stale-while-revalidate=-1, stale-if-error'))
    assert.equal(r.staleWhileRevalidate, undefined)
    assert.equal(r.staleIfError, undefined)
  })
})

// ---------------------------------------------------------------------------
// Conditional requests
// ---------------------------------------------------------------------------

describe('Conditional requests (evaluatePreconditions, RFC 9110 §13)', () => {
  const LM = Date.UTC(2024, 0, 1, 0, 0, 0)
  const current: Validators = { etag: '"v1"', lastModified: LM }
  const before = http(LM - 60 * SEC)
  const same = http(LM)
  const after = http(LM + 60 * SEC)
  const put = (headers: HeaderBag) => req('PUT', headers)

  test('RFC 9110 §13.2.2: without preconditions the request proceeds', () => {
    assert.equal(evaluatePreconditions(get(), current), 'proceed')
    assert.equal(evaluatePreconditions(req('PUT'), current), 'proceed')
  })

  test('RFC 9110 §13.1.1: If-Match with a matching strong tag proceeds', () => {
    assert.equal(evaluatePreconditions(put({ 'if-match': '"v1"' }), current), 'proceed')
    assert.equal(evaluatePreconditions(put({ 'if-match': '"x", "v1"' }), current), 'proceed')
  })

  test('RFC 9110 §13.1.1: If-Match with no matching tag fails (412)', () => {
    assert.equal(evaluatePreconditions(put({ 'if-match': '"v2"' }), current), 'failed')
    assert.equal(evaluatePreconditions(get({ 'if-match': '"v2"' }), current), 'failed')
  })

  test('RFC 9110 §13.1.1: If-Match uses the strong comparison (weak tags never match)', () => {
    const weakCurrent: Validators = { etag: 'W/"v1"', lastModified: LM }
    assert.equal(evaluatePreconditions(put({ 'if-match': 'W/"v1"' }), weakCurrent), 'failed')
    assert.equal(evaluatePreconditions(put({ 'if-match': '"v1"' }), weakCurrent), 'failed')
    assert.equal(evaluatePreconditions(put({ 'if-match': 'W/"v1"' }), current), 'failed')
  })

  test('RFC 9110 §13.1.1: If-Match: * is true when there is a current representation', () => {
    assert.equal(evaluatePreconditions(put({ 'if-match': '*' }), current), 'proceed')
  })

  test('RFC 9110 §13.1.1: If-Match fails when the representation has no ETag', () => {
    assert.equal(evaluatePreconditions(put({ 'if-match': '"v1"' }), { lastModified: LM }), 'failed')
  })

  test('RFC 9110 §13.1.1: an If-Match that is neither * nor a list of entity tags is false (412)', () => {
    // "Otherwise, the condition is false": a malformed If-Match must not be treated as absent.
    assert.equal(evaluatePreconditions(put({ 'if-match': 'v1' }), current), 'failed')
  })

  test('RFC 9110 §13.2.2: a failing If-Match gives 412 even when If-None-Match would match', () => {
    const r = get({ 'if-match': '"other"', 'if-none-match': '"v1"' })
    assert.equal(evaluatePreconditions(r, current), 'failed')
  })

  test('RFC 9110 §13.2.2: a passing If-Match is followed by If-None-Match evaluation', () => {
    const r = get({ 'if-match': '"v1"', 'if-none-match': '"v1"' })
    assert.equal(evaluatePreconditions(r, current), 'not-modified')
  })

  test('RFC 9110 §13.1.4: If-Unmodified-Since fails when modified after the date', () => {
    assert.equal(evaluatePreconditions(put({ 'if-unmodified-since': before }), current), 'failed')
  })

  test('RFC 9110 §13.1.4: If-Unmodified-Since passes when not modified after the date (equal or earlier)', () => {
    assert.equal(evaluatePreconditions(put({ 'if-unmodified-since': same }), current), 'proceed')
    assert.equal(evaluatePreconditions(put({ 'if-unmodified-since': after }), current), 'proceed')
  })

  test('RFC 9110 §13.1.4: If-Unmodified-Since is ignored when If-Match is present', () => {
    const r = put({ 'if-match': '"v1"', 'if-unmodified-since': before })
    assert.equal(evaluatePreconditions(r, current), 'proceed')
  })

  test('RFC 9110 §13.1.4: an invalid If-Unmodified-Since date is ignored', () => {
    const r = put({ 'if-unmodified-since': '2023-12-31T00:00:00Z' })
    assert.equal(evaluatePreconditions(r, current), 'proceed')
  })

  test('RFC 9110 §13.2.2: a failing If-Unmodified-Since gives 412 even when If-None-Match would match', () => {
    const r = get({ 'if-unmodified-since': before, 'if-none-match': '"v1"' })
    assert.equal(evaluatePreconditions(r, current), 'failed')
  })

  test('RFC 9110 §13.1.2: If-None-Match uses the weak comparison', () => {
    const weakCurrent: Validators = { etag: 'W/"v1"' }
    assert.equal(
      evaluatePreconditions(get({ 'if-none-match': '"v1"' }), weakCurrent),
      'not-modified',
    )
    assert.equal(evaluatePreconditions(get({ 'if-none-match': 'W/"v1"' }), current), 'not-modified')
    assert.equal(
      evaluatePreconditions(get({ 'if-none-match': 'W/"v1"' }), weakCurrent),
      'not-modified',
    )
  })

  test('RFC 9110 §13.1.2: If-None-Match with no matching tag proceeds', () => {
    assert.equal(
      evaluatePreconditions(get({ 'if-none-match': '"v2", W/"v3"' }), current),
      'proceed',
    )
  })

  test('RFC 9110 §13.1.2: a matching If-None-Match gives 304 for GET and HEAD', () => {
    assert.equal(evaluatePreconditions(get({ 'if-none-match': '"v1"' }), current), 'not-modified')
    assert.equal(
      evaluatePreconditions(req('HEAD', { 'if-none-match': '"v1"' }), current),
      'not-modified',
    )
  })

  test('RFC 9110 §13.1.2: a matching If-None-Match gives 412 for other methods', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = req(method, { 'if-none-match': '"v1"' })
      assert.equal(evaluatePreconditions(r, current), 'failed', method)
    }
  })

  test('RFC 9110 §13.1.2: If-None-Match: * is false when a representation exists (304 GET, 412 PUT)', () => {
    assert.equal(evaluatePreconditions(get({ 'if-none-match': '*' }), current), 'not-modified')
    assert.equal(evaluatePreconditions(put({ 'if-none-match': '*' }), current), 'failed')
  })

  test('RFC 9110 §13.1.2: an If-None-Match list matches through its valid members (one list across lines)', () => {
    const r = get({ 'if-none-match': 'bogus, "v1"' })
    assert.equal(evaluatePreconditions(r, current), 'not-modified')
    const lines = get({ 'if-none-match': ['"v0"', '"v1"'] })
    assert.equal(evaluatePreconditions(lines, current), 'not-modified')
  })

  test('RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present', () => {
    const r = get({ 'if-none-match': '"other"', 'if-modified-since': after })
    assert.equal(evaluatePreconditions(r, current), 'proceed')
  })

  test('RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present, even if malformed', () => {
    // §13.1.2: a value that is neither * nor a list of tags makes the condition true
    // (proceed); §13.1.3: the mere presence of If-None-Match disables If-Modified-Since.
    const r = get({ 'if-none-match': 'v1', 'if-modified-since': after })
    assert.equal(evaluatePreconditions(r, current), 'proceed')
  })

  test('RFC 9110 §13.1.3: Last-Modified equal to (or earlier than) If-Modified-Since gives 304', () => {
    assert.equal(evaluatePreconditions(get({ 'if-modified-since': same }), current), 'not-modified')
    assert.equal(
      evaluatePreconditions(get({ 'if-modified-since': after }), current),
      'not-modified',
    )
  })

  test('RFC 9110 §13.1.3: Last-Modified later than If-Modified-Since proceeds', () => {
    assert.equal(evaluatePreconditions(get({ 'if-modified-since': before }), current), 'proceed')
  })

  test('RFC 9110 §13.1.3: If-Modified-Since applies to HEAD and is ignored for other methods than GET/HEAD', () => {
    const head = req('HEAD', { 'if-modified-since': same })
    assert.equal(evaluatePreconditions(head, current), 'not-modified')
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = req(method, { 'if-modified-since': after })
      assert.equal(evaluatePreconditions(r, current), 'proceed', method)
    }
  })

  test('RFC 9111 §4.3.2: without Last-Modified, If-Modified-Since is compared with the Date (or when received)', () => {
    const dated: Validators = { etag: undefined, date: LM + 500 }
    assert.equal(evaluatePreconditions(get({ 'if-modified-since': same }), dated), 'not-modified')
    assert.equal(evaluatePreconditions(get({ 'if-modified-since': after }), dated), 'not-modified')
    assert.equal(evaluatePreconditions(get({ 'if-modified-since': before }), dated), 'proceed')
    assert.equal(
      evaluatePreconditions(get({ 'if-modified-since': before }), {
        lastModified: LM - 120 * SEC,
        date: LM,
      }),
      'not-modified',
      'Last-Modified, when there is one, decides',
    )
    assert.equal(
      evaluatePreconditions(put({ 'if-unmodified-since': before }), dated),
      'proceed',
      'If-Unmodified-Since never uses the Date',
    )
  })

  test('RFC 9110 §13.1.3: an invalid If-Modified-Since date is ignored', () => {
    for (const v of [
      '2024-01-01',
      '0',
      'Mon, 01 Jan 2024 00:00:00',
      'Mon, 01 Jan 2024 00:00:00 UTC',
    ]) {
      assert.equal(evaluatePreconditions(get({ 'if-modified-since': v }), current), 'proceed', v)
    }
  })

  test('RFC 9110 §13.1.3: an If-Modified-Since with more than one member is ignored', () => {
    assert.equal(
      evaluatePreconditions(get({ 'if-modified-since': [same, after] }), current),
      'proceed',
    )
    const joined = get({ 'if-modified-since': `${same}, ${after}` })
    assert.equal(evaluatePreconditions(joined, current), 'proceed')
  })

  test('RFC 9110 §13.1.3, §13.1.4: date preconditions are ignored without a modification date', () => {
    const noDate: Validators = { etag: '"v1"' }
    assert.equal(evaluatePreconditions(get({ 'if-modified-since': after }), noDate), 'proceed')
    assert.equal(evaluatePreconditions(put({ 'if-unmodified-since': before }), noDate), 'proceed')
  })
})

// ---------------------------------------------------------------------------
// 304 Not Modified
// ---------------------------------------------------------------------------

describe('304 Not Modified header fields (notModifiedHeaders, RFC 9110 §15.4.5)', () => {
  const full: HeaderBag = {
    'cache-control': 'max-age=60',
    'content-location': '/a.en',
    date: http(T),
    etag: '"v1"',
    expires: http(T + 60 * SEC),
    vary: 'Accept-Encoding',
    'last-modified': http(T - DAY),
    age: '5',
    'content-type': 'text/html; charset=utf-8',
    'content-length': '1234',
    'content-encoding': 'gzip',
    'content-language': 'en',
    'content-range': 'bytes 0-9/100',
    'set-cookie': ['a=1'],
    'transfer-encoding': 'chunked',
    'x-custom': 'yes',
  }

  test('RFC 9110 §15.4.5: a 304 keeps Cache-Control, Content-Location, Date, ETag, Expires and Vary (plus Last-Modified and Age)', () => {
    const out = notModifiedHeaders(full)
    assert.deepEqual(Object.keys(out).sort(), [
      'age',
      'cache-control',
      'content-location',
      'date',
      'etag',
      'expires',
      'last-modified',
      'vary',
    ])
    for (const k of Object.keys(out)) assert.equal(out[k], full[k], k)
  })

  test('RFC 9110 §15.4.5: a 304 drops representation metadata (Content-Type, Content-Length, …) and other fields', () => {
    const out = notModifiedHeaders(full)
    for (const k of [
      'content-type',
      'content-length',
      'content-encoding',
      'content-language',
      'content-range',
      'set-cookie',
      'transfer-encoding',
      'x-custom',
    ]) {
      assert.equal(k in out, false, k)
    }
  })

  test('RFC 9110 §15.4.5: a 304 only carries the listed fields the 200 had, values kept as they are', () => {
    assert.deepEqual(notModifiedHeaders({ etag: '"v1"', 'content-type': 'text/plain' }), {
      etag: '"v1"',
    })
    assert.deepEqual(notModifiedHeaders({}), {})
    const multi = { vary: ['Accept', 'Origin'], 'cache-control': ['public', 'max-age=60'] }
    assert.deepEqual(notModifiedHeaders(multi), multi)
  })
})
