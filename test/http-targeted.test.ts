/**
 * Unit tests for src/http/targeted.ts, written from RFC 9213 (Targeted HTTP
 * Cache Control) and the Dictionary parsing of RFC 8941 (Structured Field
 * Values) it relies on. Where a behaviour is a cachette choice rather than an
 * RFC requirement, the test name says so.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { deltaSeconds, type HeaderBag } from '../src/http/headers.js'
import { parseTargetedField, targetedDirectives } from '../src/http/targeted.js'

/** The parsed directives as a plain object, for deepEqual. */
const parsed = (value: string | undefined): Record<string, string | true> | undefined => {
  const d = parseTargetedField(value)
  return d === undefined ? undefined : Object.fromEntries(d)
}

describe('parseTargetedField', () => {
  test('RFC 9213 §2.1: max-age=60 is an Integer member', () => {
    assert.deepEqual(parsed('max-age=60'), { 'max-age': '60' })
  })

  test('RFC 9213 §2.1: max-age=60, private is an Integer and a Boolean', () => {
    assert.deepEqual(parsed('max-age=60, private'), { 'max-age': '60', private: true })
  })

  test('RFC 9213 §2.1: no-store is a bare key, i.e. Boolean true', () => {
    assert.deepEqual(parsed('no-store'), { 'no-store': true })
  })

  test('RFC 9213 §2.1: s-maxage=10 is an Integer member', () => {
    const d = parseTargetedField('s-maxage=10')
    assert.equal(d?.get('s-maxage'), '10')
    assert.equal(deltaSeconds(d?.get('s-maxage')), 10)
  })

  test('RFC 9213 §2.1: private="set-cookie" is a String, unquoted', () => {
    assert.deepEqual(parsed('private="set-cookie"'), { private: 'set-cookie' })
    assert.deepEqual(parsed('no-cache="set-cookie, x-foo"'), { 'no-cache': 'set-cookie, x-foo' })
  })

  test('RFC 8941 §4.2.5: a String unescapes only \\" and \\\\', () => {
    assert.deepEqual(parsed('a="x\\"y\\\\z"'), { a: 'x"y\\z' })
    assert.equal(parsed('a="x\\ny"'), undefined)
  })

  test('RFC 8941 §4.2.5: a String holds printable ASCII only', () => {
    assert.equal(parsed('a="tab\there"'), undefined)
    assert.equal(parsed('a="caf\u00e9"'), undefined)
    assert.deepEqual(parsed('a=" ~ "'), { a: ' ~ ' })
  })

  test('RFC 9213 §2.1: a Token value is its text', () => {
    assert.deepEqual(parsed('foo=bar, baz=*a:b/c'), { foo: 'bar', baz: '*a:b/c' })
  })

  test('RFC 9213 §2.1: parameters on a directive are ignored (max-age=60;foo=bar)', () => {
    assert.deepEqual(parsed('max-age=60;foo=bar'), { 'max-age': '60' })
    assert.deepEqual(parsed('no-store;a;b="x";c=?1, max-age=5; d=1.5'), {
      'no-store': true,
      'max-age': '5',
    })
  })

  test('RFC 8941 §4.2.3.2: an invalid parameter makes the field invalid', () => {
    assert.equal(parsed('max-age=60;Foo=bar'), undefined)
    assert.equal(parsed('max-age=60;foo='), undefined)
    assert.equal(parsed('max-age=60;'), undefined)
  })

  test('RFC 8941 §3.3.6: ?1 is true and ?0 leaves the directive absent', () => {
    assert.deepEqual(parsed('no-store=?1'), { 'no-store': true })
    assert.deepEqual(parsed('no-store=?0, max-age=60'), { 'max-age': '60' })
    assert.equal(parsed('no-store=?2'), undefined)
  })

  test('cachette choice: a field whose only member is ?0 is valid, with no directives', () => {
    const d = parseTargetedField('no-store=?0')
    assert.ok(d !== undefined)
    assert.equal(d.size, 0)
  })

  test('RFC 8941 §4.2.4: a negative Integer or a Decimal is kept, and deltaSeconds rejects it', () => {
    const d = parseTargetedField('max-age=-1, s-maxage=1.5')
    assert.equal(d?.get('max-age'), '-1')
    assert.equal(d?.get('s-maxage'), '1.5')
    assert.equal(deltaSeconds(d?.get('max-age')), undefined)
    assert.equal(deltaSeconds(d?.get('s-maxage')), undefined)
  })

  test('RFC 8941 §4.2.4: an Integer is its decimal value (leading zeros dropped)', () => {
    assert.deepEqual(parsed('max-age=007'), { 'max-age': '7' })
    assert.deepEqual(parsed('max-age=999999999999999'), { 'max-age': '999999999999999' })
  })

  test('RFC 8941 §4.2.4: over-long numbers and bare dots are invalid', () => {
    assert.equal(parsed('max-age=1234567890123456'), undefined)
    assert.equal(parsed('a=1234567890123.5'), undefined)
    assert.equal(parsed('a=1.2345'), undefined)
    assert.equal(parsed('a=1.'), undefined)
    assert.equal(parsed('a=-'), undefined)
    assert.equal(parsed('a=1.2.3'), undefined)
    assert.deepEqual(parsed('a=123456789012.123'), { a: '123456789012.123' })
  })

  test('RFC 9213 §2.1: a Byte Sequence value leaves the directive absent', () => {
    assert.deepEqual(parsed('a=:aGVsbG8=:, max-age=1'), { 'max-age': '1' })
    assert.equal(parsed('a=:not base64!:'), undefined)
    assert.equal(parsed('a=:aGVsbG8='), undefined)
  })

  test('cachette choice: an Inner List value is valid RFC 8941 but leaves the directive absent', () => {
    assert.deepEqual(parsed('a=(b "c" 1);p=1, max-age=1'), { 'max-age': '1' })
    assert.deepEqual(parsed('a=( )'), {})
    assert.equal(parsed('a=(b'), undefined)
    assert.equal(parsed('a=(b,c)'), undefined)
  })

  test('RFC 8941 §4.2.2: with a repeated key, the last value wins', () => {
    assert.deepEqual(parsed('max-age=60, max-age=5'), { 'max-age': '5' })
    assert.deepEqual(parsed('no-store, no-store=?0'), {})
    assert.deepEqual(parsed('max-age=60, max-age=:AA==:'), {})
  })

  test('RFC 8941 §4.2: leading and trailing spaces of the field are stripped', () => {
    assert.deepEqual(parsed('   max-age=60   '), { 'max-age': '60' })
  })

  test('RFC 8941 §4.2.2: OWS (spaces and tabs) is allowed around commas', () => {
    assert.deepEqual(parsed('max-age=60 ,\tprivate'), { 'max-age': '60', private: true })
    assert.deepEqual(parsed('max-age=60,private'), { 'max-age': '60', private: true })
  })

  test('RFC 9213 §2.1: an absent or empty field is ignored', () => {
    assert.equal(parsed(undefined), undefined)
    assert.equal(parsed(''), undefined)
    assert.equal(parsed('   '), undefined)
  })

  test('RFC 9213 §2.1: a field that is not a valid Dictionary is ignored as a whole', () => {
    for (const v of [
      'max-age=60,',
      'Max-Age=60',
      'max-age="60',
      'max-age=6 0',
      ', max-age=1',
      'max-age=60,, private',
      'max-age=60 private',
      'max-age =60',
      'max-age= 60',
      'max-age=60abc!',
      'max-age=@',
      '1max=2',
      '\tmax-age=60',
      'max-age=60; ',
      'private=set-cookie, Foo',
    ]) {
      assert.equal(parsed(v), undefined, v)
    }
  })

  test('RFC 9213 §2.1: the key may start with *', () => {
    assert.deepEqual(parsed('*foo=1'), { '*foo': '1' })
  })
})

describe('targetedDirectives', () => {
  const list = ['example-cdn-cache-control', 'cdn-cache-control'] as const

  test('RFC 9213 §2.2: the first field of the target list that is present is used', () => {
    const headers: HeaderBag = {
      'example-cdn-cache-control': 'max-age=10',
      'cdn-cache-control': 'max-age=60',
      'cache-control': 'no-store',
    }
    assert.deepEqual(Object.fromEntries(targetedDirectives(headers, list) ?? []), {
      'max-age': '10',
    })
  })

  test('RFC 9213 §2.2: a less specific field is used when the first is absent', () => {
    const headers: HeaderBag = { 'cdn-cache-control': 'max-age=60' }
    assert.equal(targetedDirectives(headers, list)?.get('max-age'), '60')
  })

  test('RFC 9213 §2.2: an invalid first field is skipped for the next valid one', () => {
    const headers: HeaderBag = {
      'example-cdn-cache-control': 'max-age=10,',
      'cdn-cache-control': 'max-age=60',
    }
    assert.equal(targetedDirectives(headers, list)?.get('max-age'), '60')
  })

  test('RFC 9213 §2.2: an empty first field is skipped for the next one', () => {
    const headers: HeaderBag = {
      'example-cdn-cache-control': '',
      'cdn-cache-control': 'no-store',
    }
    assert.equal(targetedDirectives(headers, list)?.get('no-store'), true)
  })

  test('RFC 9213 §2.2: with no valid targeted field the result is undefined (use Cache-Control)', () => {
    assert.equal(targetedDirectives({ 'cache-control': 'max-age=60' }, list), undefined)
    assert.equal(
      targetedDirectives({ 'example-cdn-cache-control': 'X', 'cdn-cache-control': '' }, list),
      undefined,
    )
    assert.equal(targetedDirectives({ 'cdn-cache-control': 'max-age=60' }, []), undefined)
  })

  test('RFC 9213 §2.2: target list names are case-insensitive', () => {
    const headers: HeaderBag = { 'cdn-cache-control': 'max-age=60' }
    assert.equal(targetedDirectives(headers, ['CDN-Cache-Control'])?.get('max-age'), '60')
  })

  test('RFC 8941 §4.2: repeated field lines are combined before parsing', () => {
    const headers: HeaderBag = { 'cdn-cache-control': ['max-age=60', 'private'] }
    assert.deepEqual(Object.fromEntries(targetedDirectives(headers, list) ?? []), {
      'max-age': '60',
      private: true,
    })
    // The combined value is what is validated: a bad line spoils the field.
    const bad: HeaderBag = { 'cdn-cache-control': ['max-age=60', 'Private'] }
    assert.equal(targetedDirectives(bad, list), undefined)
  })
})
