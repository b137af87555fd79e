/**
 * Random tokens kept in the backend: a tag's (invalidated by replacing it),
 * a memoized function's version, a lock's holder.
 */
import { randomBytes } from 'node:crypto'
import type { CacheBackend } from '../backend.js'

/**
 * A new random token (a tag's, a memoized function's version, a lock's):
 * six base64 characters, the length of Flask-Caching's memoize versions.
 */
export function newToken(): string {
  return randomBytes(6).toString('base64').slice(0, 6)
}

/**
 * The current tokens at `keys`, creating missing ones. `add()` makes two
 * processes creating one at once agree on a single token. Tokens never
 * expire; a token that is lost (evicted) reads as a new one, which makes the
 * entries that recorded the old one misses: losing a token can never bring
 * an invalidated entry back.
 */
export async function tokensFor(backend: CacheBackend, keys: readonly string[]): Promise<string[]> {
  const got = await readMany(backend, keys)
  const tokens: string[] = []
  for (let i = 0; i < keys.length; i++) {
    const v = got[i]
    if (typeof v === 'string') tokens.push(v)
    else {
      const fresh = newToken()
      const k = keys[i] as string
      tokens.push((await backend.add(k, fresh, 0)) ? fresh : String(await backend.get(k)))
    }
  }
  return tokens
}

/** `getMany`, or a plain `get` for one key (backends without a native multi-get answer it faster). */
export function readMany(backend: CacheBackend, keys: readonly string[]): Promise<unknown[]> {
  return keys.length === 1 ? backend.get(keys[0] as string).then((v) => [v]) : backend.getMany(keys)
}
