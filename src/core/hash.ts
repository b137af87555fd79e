import * as crypto from 'node:crypto'
import { ConfigError } from './errors.js'

/**
 * How keys are hashed: a `node:crypto` algorithm name (`'sha256'`, the default;
 * `'sha1'`, `'md5'`, ...) or a function returning the digest bytes.
 */
export type HashMethod = string | ((data: string) => Uint8Array)

/** The algorithms Flask-Caching's tests parametrize over. */
export const SUPPORTED_HASH_FUNCTIONS = [
  'sha1',
  'sha224',
  'sha256',
  'sha384',
  'sha512',
  'md5',
] as const

/** A resolved hash function returning the raw digest. */
export type DigestFn = (data: string) => Buffer

/** Resolves a {@link HashMethod}; throws {@link ConfigError} naming `key` for an unknown algorithm. */
export function resolveHashMethod(method: unknown, key = 'CACHE_HASH_METHOD'): DigestFn {
  if (method === undefined || method === null) method = 'sha256'
  if (typeof method === 'string') {
    const algorithm = method.toLowerCase()
    if (!crypto.getHashes().includes(algorithm)) {
      throw new ConfigError(key, `unknown hash algorithm ${JSON.stringify(method)}`)
    }
    // The one-shot crypto.hash (Node >= 20.12) is about twice as fast for short inputs.
    const oneShot = (crypto as { hash?: (a: string, d: string, o: 'buffer') => Buffer }).hash
    return oneShot
      ? (data) => oneShot(algorithm, data, 'buffer')
      : (data) => crypto.createHash(algorithm).update(data).digest()
  }
  if (typeof method === 'function') {
    const fn = method as (data: string) => Uint8Array
    return (data) => {
      const out = fn(data)
      return Buffer.isBuffer(out) ? out : Buffer.from(out)
    }
  }
  throw new ConfigError(key, `expected an algorithm name or a function, got ${typeof method}`)
}
