/**
 * Unit tests for src/http/range.ts, written from RFC 9110 §14 (Range
 * Requests), §13.1.5 (If-Range) and §15.3.7/§15.5.17 (206, 416). Where a
 * behaviour is a cachette choice rather than an RFC requirement, the test
 * name says so.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ifRangeAllows, parseRange, rangeAnswer } from '../src/http/range.js'

/** Sun, 06 Nov 1994 08:49:37 GMT, the RFCs' example date. */
const RFC_EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37)
const http = (ms: number): string => new Date(ms).toUTCString()

describe('parseRange', () => {
  test('RFC 9110 §14.2: an absent Range is ignored (full 200)', () => {
    assert.equal(parseRange(undefined, 100), undefined)
  })

  test('RFC 9110 §14.1.2: bytes=0-4 is the first five bytes', () => {
    assert.deepEqual(parseRange('bytes=0-4', 100), { start: 0, end: 4 })
  })

  test('RFC 9110 §14.1.2: bytes=5-5 is a single byte', () => {
    assert.deepEqual(parseRange('bytes=5-5', 100), { start: 5, end: 5 })
  })

  test('RFC 9110 §14.1.2: a last-pos at or past the end is clamped to the last byte', () => {
    assert.deepEqual(parseRange('bytes=90-99', 100), { start: 90, end: 99 })
    assert.deepEqual(parseRange('bytes=90-500', 100), { start: 90, end: 99 })
  })

  test('RFC 9110 §14.1.2: bytes=10- is from byte 10 to the end', () => {
    assert.deepEqual(parseRange('bytes=10-', 100), { start: 10, end: 99 })
    assert.deepEqual(parseRange('bytes=99-', 100), { start: 99, end: 99 })
  })

  test('RFC 9110 §14.1.2: a suffix range bytes=-5 is the last five bytes', () => {
    assert.deepEqual(parseRange('bytes=-5', 100), { start: 95, end: 99 })
  })

  test('RFC 9110 §14.1.2: a suffix longer than the representation is the whole of it', () => {
    assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 99 })
    assert.deepEqual(parseRange('bytes=-100', 100), { start: 0, end: 99 })
  })

  test('RFC 9110 §14.1.2: a first-pos at or past the length is unsatisfiable', () => {
    assert.equal(parseRange('bytes=100-200', 100), 'unsatisfiable')
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable')
    assert.equal(parseRange('bytes=500-', 100), 'unsatisfiable')
  })

  test('RFC 9110 §14.1.2: a zero suffix-length is unsatisfiable', () => {
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable')
  })

  test('RFC 9110 §14.1.2: any range of an empty representation is unsatisfiable', () => {
    assert.equal(parseRange('bytes=0-0', 0), 'unsatisfiable')
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable')
    assert.equal(parseRange('bytes=-5', 0), 'unsatisfiable')
  })

  test('RFC 9110 §14.1.1: last-pos less than first-pos is invalid (ignored)', () => {
    assert.equal(parseRange('bytes=5-4', 100), undefined)
    // Invalid even when first-pos is also past the end: invalid comes before unsatisfiable.
    assert.equal(parseRange('bytes=500-400', 100), undefined)
  })

  test('RFC 9110 §14.1: the range unit is case-insensitive (BYTES=0-1)', () => {
    assert.deepEqual(parseRange('BYTES=0-1', 100), { start: 0, end: 1 })
    assert.deepEqual(parseRange('Bytes=0-1', 100), { start: 0, end: 1 })
  })

  test('RFC 9110 §14.2: a unit other than bytes is ignored (items=0-1)', () => {
    assert.equal(parseRange('items=0-1', 100), undefined)
    assert.equal(parseRange('none', 100), undefined)
  })

  test('RFC 9110 §14.1.1: malformed range specifiers are ignored', () => {
    for (const v of [
      '',
      'bytes',
      'bytes=',
      'bytes=-',
      'bytes=5',
      'bytes=a-b',
      'bytes=0-b',
      'bytes=a-',
      'bytes=--5',
      'bytes=+1-2',
      'bytes=-+5',
      'bytes=1.5-2',
      'bytes=0-1.5',
      'bytes=0x10-20',
      'bytes=0 - 5',
      'bytes =0-5',
      'bytes=,',
      '=0-5',
    ]) {
      assert.equal(parseRange(v, 100), undefined, v)
    }
  })

  test('RFC 9110 §14.2: several ranges are ignored (cachette serves the full 200)', () => {
    assert.equal(parseRange('bytes=0-1,2-3', 100), undefined)
    assert.equal(parseRange('bytes=0-1, -5', 100), undefined)
    // Still two ranges, even when identical.
    assert.equal(parseRange('bytes=0-5, 0-5', 100), undefined)
    // Several ranges all unsatisfiable are still ignored, not 416.
    assert.equal(parseRange('bytes=200-300, 400-', 100), undefined)
  })

  test('RFC 9110 §14.1.1: one invalid member makes the whole Range invalid', () => {
    assert.equal(parseRange('bytes=0-1, x', 100), undefined)
  })

  test('RFC 9110 §5.6.1: OWS around members and commas is tolerated', () => {
    assert.deepEqual(parseRange('bytes= 0-4 ', 100), { start: 0, end: 4 })
    assert.deepEqual(parseRange('  bytes=\t-5\t', 100), { start: 95, end: 99 })
  })

  test('RFC 9110 §5.6.1.2: empty list elements are ignored (bytes=0-4, is one range)', () => {
    assert.deepEqual(parseRange('bytes=0-4,', 100), { start: 0, end: 4 })
    assert.deepEqual(parseRange('bytes=, ,0-4', 100), { start: 0, end: 4 })
  })

  test('RFC 9110 §14.1.2: leading zeros are the same position', () => {
    assert.deepEqual(parseRange('bytes=007-0009', 100), { start: 7, end: 9 })
    assert.deepEqual(parseRange('bytes=00000000000000000001-2', 100), { start: 1, end: 2 })
    assert.equal(parseRange('bytes=-000', 100), 'unsatisfiable')
  })

  test('RFC 9110 §14.1.2: a first-pos beyond any safe integer is unsatisfiable', () => {
    assert.equal(parseRange('bytes=99999999999999999999-', 100), 'unsatisfiable')
    assert.equal(
      parseRange('bytes=99999999999999999999-999999999999999999999', 100),
      'unsatisfiable',
    )
  })

  test('RFC 9110 §14.1.2: a huge last-pos is clamped, a huge suffix is the whole body', () => {
    assert.deepEqual(parseRange('bytes=10-99999999999999999999', 100), { start: 10, end: 99 })
    assert.deepEqual(parseRange('bytes=-99999999999999999999', 100), { start: 0, end: 99 })
  })

  test('RFC 9110 §14.1.1: a huge last-pos below a huger first-pos is still invalid', () => {
    assert.equal(parseRange('bytes=99999999999999999999-99999999999999999998', 100), undefined)
  })

  test('cachette choice: an unusable length (negative, fractional, NaN) ignores Range', () => {
    assert.equal(parseRange('bytes=0-1', -1), undefined)
    assert.equal(parseRange('bytes=0-1', 1.5), undefined)
    assert.equal(parseRange('bytes=0-1', Number.NaN), undefined)
  })
})

describe('ifRangeAllows', () => {
  const etag = '"v1"'
  const lastModified = RFC_EXAMPLE

  test('RFC 9110 §13.1.5: without If-Range the range is served', () => {
    assert.equal(ifRangeAllows(undefined, {}), true)
  })

  test('RFC 9110 §13.1.5: a strong entity tag matching the current ETag allows the range', () => {
    assert.equal(ifRangeAllows('"v1"', { etag }), true)
    assert.equal(ifRangeAllows(' "v1" ', { etag }), true)
  })

  test('RFC 9110 §13.1.5: a different entity tag sends the full representation', () => {
    assert.equal(ifRangeAllows('"v2"', { etag }), false)
  })

  test('RFC 9110 §13.1.5: a weak entity tag never matches (strong comparison)', () => {
    assert.equal(ifRangeAllows('W/"v1"', { etag }), false)
    assert.equal(ifRangeAllows('W/"v1"', { etag: 'W/"v1"' }), false)
  })

  test('RFC 9110 §8.8.3.2: a strong tag does not match a weak current ETag', () => {
    assert.equal(ifRangeAllows('"v1"', { etag: 'W/"v1"' }), false)
  })

  test('RFC 9110 §13.1.5: an entity tag with no current ETag is false', () => {
    assert.equal(ifRangeAllows('"v1"', { lastModified, lastModifiedIsStrong: true }), false)
  })

  test('RFC 9110 §13.1.5: a malformed entity tag is false', () => {
    assert.equal(ifRangeAllows('"v1', { etag }), false)
    assert.equal(ifRangeAllows('W/v1', { etag }), false)
    assert.equal(ifRangeAllows('"v1", "v2"', { etag }), false)
  })

  test('RFC 9110 §13.1.5: an HTTP-date equal to a strong Last-Modified allows the range', () => {
    const v = { lastModified, lastModifiedIsStrong: true }
    assert.equal(ifRangeAllows(http(RFC_EXAMPLE), v), true)
    // The obsolete forms are HTTP-dates too (§5.6.7).
    assert.equal(ifRangeAllows('Sunday, 06-Nov-94 08:49:37 GMT', v), true)
    assert.equal(ifRangeAllows('Sun Nov  6 08:49:37 1994', v), true)
  })

  test('RFC 9110 §13.1.5: Last-Modified is compared in whole seconds', () => {
    const v = { lastModified: RFC_EXAMPLE + 750, lastModifiedIsStrong: true }
    assert.equal(ifRangeAllows(http(RFC_EXAMPLE), v), true)
  })

  test('RFC 9110 §13.1.5: a date that is not an exact match is false (earlier or later)', () => {
    const v = { lastModified, lastModifiedIsStrong: true }
    assert.equal(ifRangeAllows(http(RFC_EXAMPLE + 1000), v), false)
    assert.equal(ifRangeAllows(http(RFC_EXAMPLE - 1000), v), false)
  })

  test('RFC 9110 §13.1.5: a date against a weak Last-Modified is false', () => {
    assert.equal(ifRangeAllows(http(RFC_EXAMPLE), { lastModified }), false)
    assert.equal(
      ifRangeAllows(http(RFC_EXAMPLE), { lastModified, lastModifiedIsStrong: false }),
      false,
    )
  })

  test('RFC 9110 §13.1.5: a date with no Last-Modified is false', () => {
    assert.equal(ifRangeAllows(http(RFC_EXAMPLE), { etag, lastModifiedIsStrong: true }), false)
  })

  test('RFC 9110 §13.1.5: an invalid If-Range value is false (full 200)', () => {
    const v = { etag, lastModified, lastModifiedIsStrong: true }
    for (const bad of ['', 'v1', '*', 'yesterday', '1994-11-06T08:49:37Z', '784111777']) {
      assert.equal(ifRangeAllows(bad, v), false, bad)
    }
  })
})

describe('rangeAnswer', () => {
  const body = Buffer.from('0123456789')
  const stored: [string, string][] = [
    ['Content-Type', 'text/plain'],
    ['content-length', '10'],
    ['Transfer-Encoding', 'chunked'],
    ['Content-Range', 'bytes 0-9/10'],
    ['ETag', '"v1"'],
    ['Last-Modified', http(RFC_EXAMPLE)],
    ['Date', http(RFC_EXAMPLE + 5000)],
    ['Cache-Control', 'max-age=60'],
    ['Vary', 'Accept-Encoding'],
    ['Content-Encoding', 'gzip'],
    ['Set-Cookie', 'a=b'],
  ]
  const names = (h: [string, string][]): string[] => h.map(([n]) => n.toLowerCase())
  const field = (h: [string, string][], name: string): string[] =>
    h.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)

  test('RFC 9110 §15.3.7: a 206 carries the slice and its Content-Range', () => {
    const a = rangeAnswer({ start: 2, end: 5 }, body, stored)
    assert.equal(a.status, 206)
    assert.equal(a.body.toString(), '2345')
    assert.deepEqual(field(a.headers, 'content-range'), ['bytes 2-5/10'])
    assert.deepEqual(field(a.headers, 'content-length'), ['4'])
  })

  test('RFC 9110 §15.3.7: a 206 drops the stored framing fields and keeps the others', () => {
    const a = rangeAnswer({ start: 0, end: 0 }, body, stored)
    assert.deepEqual(field(a.headers, 'transfer-encoding'), [])
    for (const n of [
      'content-type',
      'etag',
      'last-modified',
      'date',
      'cache-control',
      'vary',
      'content-encoding',
      'set-cookie',
    ]) {
      assert.ok(names(a.headers).includes(n), n)
    }
    assert.deepEqual(field(a.headers, 'content-length'), ['1'])
    assert.deepEqual(field(a.headers, 'content-range'), ['bytes 0-0/10'])
  })

  test('RFC 9110 §14.4: the whole body as a range is still a 206 with Content-Range', () => {
    const a = rangeAnswer({ start: 0, end: 9 }, body, [])
    assert.equal(a.status, 206)
    assert.equal(a.body.toString(), '0123456789')
    assert.deepEqual(a.headers, [
      ['Content-Range', 'bytes 0-9/10'],
      ['Content-Length', '10'],
    ])
  })

  test('cachette choice: the 206 body is a view of the stored body (subarray, no copy)', () => {
    const a = rangeAnswer({ start: 3, end: 4 }, body, [])
    assert.equal(a.body.buffer, body.buffer)
    assert.equal(a.body.byteOffset, body.byteOffset + 3)
  })

  test('RFC 9110 §15.5.17: a 416 has Content-Range bytes */length and no body', () => {
    const a = rangeAnswer('unsatisfiable', body, stored)
    assert.equal(a.status, 416)
    assert.equal(a.body.length, 0)
    assert.deepEqual(field(a.headers, 'content-range'), ['bytes */10'])
    assert.deepEqual(field(a.headers, 'content-length'), ['0'])
  })

  test('RFC 9110 §15.5.17: a 416 keeps only Date, Cache-Control, ETag, Last-Modified and Vary', () => {
    const a = rangeAnswer('unsatisfiable', body, stored)
    assert.deepEqual(names(a.headers).sort(), [
      'cache-control',
      'content-length',
      'content-range',
      'date',
      'etag',
      'last-modified',
      'vary',
    ])
  })

  test('RFC 9110 §15.5.17: a 416 of an empty body says bytes */0', () => {
    const a = rangeAnswer('unsatisfiable', Buffer.alloc(0), [])
    assert.deepEqual(a.headers, [
      ['Content-Range', 'bytes */0'],
      ['Content-Length', '0'],
    ])
  })

  test('cachette choice: a range that does not fit the body is answered 416, never thrown', () => {
    for (const r of [
      { start: 5, end: 10 },
      { start: 6, end: 5 },
      { start: -1, end: 3 },
      { start: 0.5, end: 3 },
    ]) {
      const a = rangeAnswer(r, body, stored)
      assert.equal(a.status, 416, JSON.stringify(r))
      assert.deepEqual(field(a.headers, 'content-range'), ['bytes */10'])
    }
  })

  test('RFC 9110 §14.2: parseRange and rangeAnswer together serve bytes=-3', () => {
    const r = parseRange('bytes=-3', body.length)
    assert.ok(r !== undefined)
    const a = rangeAnswer(r, body, stored)
    assert.equal(a.status, 206)
    assert.equal(a.body.toString(), '789')
    assert.deepEqual(field(a.headers, 'content-range'), ['bytes 7-9/10'])
  })

  test('rangeAnswer does not modify the stored header list', () => {
    const before = JSON.stringify(stored)
    rangeAnswer({ start: 0, end: 1 }, body, stored)
    rangeAnswer('unsatisfiable', body, stored)
    assert.equal(JSON.stringify(stored), before)
  })
})
