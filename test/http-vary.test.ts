/**
 * Unit tests for src/http/vary.ts: the value a selecting header field adds
 * to a stored variant's key, normalised only where RFC 9111 §4.1 says two
 * values mean the same.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { variantValue } from '../src/http/vary.js'

describe('Vary values (variantValue, RFC 9111 §4.1)', () => {
  test('RFC 9111 §4.1: an absent field stays absent; any field is trimmed', () => {
    assert.equal(variantValue('accept-language', undefined), undefined)
    assert.equal(variantValue('x-tenant', '  a  '), 'a')
    assert.notEqual(
      variantValue('x-tenant', 'a b'),
      variantValue('x-tenant', 'a  b'),
      'inside an unknown field, whitespace counts',
    )
    assert.notEqual(variantValue('x-tenant', 'A'), variantValue('x-tenant', 'a'), 'and case counts')
  })

  test('RFC 9111 §4.1: Accept-Language members compare case-insensitively, without whitespace, each once', () => {
    const base = variantValue('accept-language', 'en-US, fr;q=0.5')
    for (const v of [
      'EN-us,fr;q=0.5',
      ' en-us ,FR ; Q=0.50',
      'en-US, en-US, fr;q=0.5',
      'en-US;q=1, fr;q=0.500',
    ]) {
      assert.equal(variantValue('accept-language', v), base, v)
    }
  })

  test('RFC 9110 §12.4.2: members of different weights in any order are the same preference', () => {
    assert.equal(
      variantValue('accept-language', 'fr;q=0.5, en'),
      variantValue('accept-language', 'en, fr;q=0.5'),
    )
    assert.equal(
      variantValue('accept-encoding', 'gzip;q=0.8, br'),
      variantValue('accept-encoding', 'br, gzip;q=0.8'),
    )
  })

  test('members of equal weight keep their order by default (negotiators prefer the earlier), not with ignored', () => {
    assert.notEqual(
      variantValue('accept-language', 'en, fr'),
      variantValue('accept-language', 'fr,EN'),
    )
    assert.equal(
      variantValue('accept-language', 'en, fr', 'ignored'),
      variantValue('accept-language', 'fr,EN', 'ignored'),
    )
    assert.equal(
      variantValue('accept-encoding', 'gzip, br', 'ignored'),
      variantValue('accept-encoding', 'BR,gzip', 'ignored'),
    )
    assert.notEqual(
      variantValue('accept', 'text/html, application/json', 'ignored'),
      variantValue('accept', 'application/json, text/html', 'ignored'),
      'Accept keeps its order either way',
    )
  })

  test('an invalid weight is kept as written, so it never merges with a valid one', () => {
    assert.notEqual(
      variantValue('accept-language', 'en;q=2'),
      variantValue('accept-language', 'en'),
    )
    assert.notEqual(
      variantValue('accept-language', 'en;q=0.5'),
      variantValue('accept-language', 'en;q=0.6'),
    )
  })

  test('Accept keeps the case of media type parameter values (they may be case-sensitive)', () => {
    assert.equal(variantValue('accept', 'TEXT/HTML;Level=1'), 'text/html;level=1')
    assert.notEqual(
      variantValue('accept', 'text/plain;format=A'),
      variantValue('accept', 'text/plain;format=a'),
    )
  })
})
