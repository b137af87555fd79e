/**
 * Internal: the keys memcached is sent. Any cachette key works: one memcached
 * cannot take (over 250 bytes with the namespace, spaces, control characters,
 * lone surrogates) is replaced by a SHA-256 of it.
 */
import { createHash } from 'node:crypto'

/** The longest key memcached takes, in bytes. */
export const MAX_KEY = 250
const HASHED = '~h~'
/** Printable ASCII other than space: taken as is when short enough. */
const PLAIN_KEY = /^[\x21-\x7e]+$/

/**
 * Whether a key needs no hashing: no space or control character (C0, DEL, C1;
 * the text protocol cannot carry them) and no lone surrogate (UTF-8 would
 * turn it into U+FFFD, so two keys would meet).
 */
function safeChars(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c <= 0x20 || (c >= 0x7f && c <= 0x9f)) return false
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = key.charCodeAt(i + 1)
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false
      i++
    }
  }
  return true
}

/** A key memcached can take: `ns + key` if it is safe, else `ns + '~h~' + sha256(key)`. */
export function wireKey(ns: string, key: string): Buffer {
  const room = MAX_KEY - ns.length
  if (key.length <= room && !key.startsWith(HASHED)) {
    if (PLAIN_KEY.test(key)) return Buffer.from(ns + key, 'latin1')
    if (safeChars(key) && Buffer.byteLength(key) <= room) {
      return Buffer.from(ns + key)
    }
  }
  const digest = createHash('sha256').update(key, 'utf16le').digest('hex')
  return Buffer.from(ns + HASHED + digest, 'latin1')
}
