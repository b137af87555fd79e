/**
 * Reading a view's entries: the representations a client may receive in
 * one round trip (the encoded variants it accepts, then the identity one,
 * then the variant a `Vary` marker selects), each entry validated and
 * prepared once; a value that is not a view is a miss, and deleted.
 */
import type { CacheBackend } from '../backend.js'
import { headerValue, listHas } from '../headers.js'
import { type AcceptedEncodings, contentCoding } from './negotiation.js'
import { asStoredView } from './stored.js'
import type { RequestView, StoredView, ViewHit } from './types.js'
import { asVaryMarker, variantBase, variantMatches } from './vary.js'

/** A stored entry as lookups use it: validated, with what they check worked out once. */
export interface Prepared {
  /** The backend key it was read from. */
  readonly key: string
  readonly entry: StoredView
  /** Its `Content-Encoding`, lower case; `undefined` for identity. */
  readonly coding: string | undefined
  /** Whether the response varied on `Accept-Encoding`. */
  readonly variesOnEncoding: boolean
  /** The hits made from it (a GET and a HEAD one), kept when the entry is the backend's own. */
  get?: ViewHit
  head?: ViewHit
}

/**
 * A backend value read at `key`, prepared; `undefined` when it is not a
 * valid stored view (see {@link asStoredView}: a foreign or planted value
 * counts as a miss).
 */
function prepare(key: string, value: unknown, maxBody: number): Prepared | undefined {
  const entry = asStoredView(value, maxBody)
  if (entry === undefined) return undefined
  return {
    key,
    entry,
    coding: contentCoding(entry.headers),
    variesOnEncoding: listHas(headerValue(entry.headers, 'vary'), 'accept-encoding'),
  }
}

/**
 * Deletes a value at a view key that is not a valid stored view (planted or
 * corrupted): it is a miss, and never read again. Errors are ignored (the
 * next render overwrites it anyway).
 */
function dropInvalid(backend: CacheBackend, key: string): void {
  try {
    backend.delete(key).catch(() => {})
  } catch {
    // A backend that throws synchronously: the value stays a miss.
  }
}

/**
 * Whether a client may be served `found`: its coding must be acceptable, and
 * an identity entry at the base key whose response varied on
 * `Accept-Encoding` is not used for a client that accepts an encoding (that
 * client gets a miss, so its negotiated variant is created).
 */
function servable(found: Prepared, isBase: boolean, accept: AcceptedEncodings): boolean {
  const coding = found.coding
  if (coding === undefined ? !accept.identity : !accept.accepts(coding)) return false
  return !(isBase && coding === undefined && accept.encodings.length > 0 && found.variesOnEncoding)
}

/** Reads the entries of one `cached()` configuration. */
export class EntryReader {
  /** Entries read without copying ({@link PEEK}), prepared once: `null` for a value that is not a view. */
  readonly #prepared = new WeakMap<object, Prepared | null>()

  /** @param maxBody - the largest body an entry may have (`maxBodySize`) */
  constructor(readonly maxBody: number) {}

  /**
   * Reads the representations this client may receive with one round trip:
   * the encoded variants it accepts, best first, then the identity one. An
   * identity entry whose response varied on `Accept-Encoding` is not used for
   * a client that accepts an encoding: that client gets a miss, so its
   * negotiated variant is created.
   */
  async read(
    backend: CacheBackend,
    key: string,
    accept: AcceptedEncodings,
    view: Pick<RequestView, 'header'> | undefined,
  ): Promise<Prepared | undefined> {
    const keys = [...accept.encodings.map((c) => `${key}|${c}`), key]
    const values = keys.length === 1 ? [await backend.get(key)] : await backend.getMany(keys)
    const marker = view === undefined ? undefined : asVaryMarker(values[keys.length - 1])
    if (marker !== undefined && view !== undefined) {
      // A response that varied on request headers: the variant this request selects.
      const found = await this.read(backend, variantBase(key, marker, view), accept, undefined)
      return found !== undefined && variantMatches(found.entry, view) ? found : undefined
    }
    let found: Prepared | undefined
    for (let i = 0; i < keys.length; i++) {
      const value = values[i]
      if (value === undefined) continue
      const prepared = prepare(keys[i] as string, value, this.maxBody)
      if (prepared === undefined) dropInvalid(backend, keys[i] as string)
      else if (found === undefined && servable(prepared, i === keys.length - 1, accept)) {
        found = prepared
      }
    }
    return found
  }

  /** {@link EntryReader.read} on a backend that shares its entries: synchronous, each entry prepared once. */
  peek(
    backend: CacheBackend,
    peek: (key: string) => unknown,
    key: string,
    accept: AcceptedEncodings,
    view: Pick<RequestView, 'header'> | undefined,
  ): Prepared | undefined {
    const n = accept.encodings.length
    for (let i = 0; i <= n; i++) {
      const k = i === n ? key : `${key}|${accept.encodings[i]}`
      const value = peek.call(backend, k)
      if (value === undefined) continue
      const marker = i === n && view !== undefined ? asVaryMarker(value) : undefined
      if (marker !== undefined && view !== undefined) {
        const found = this.peek(backend, peek, variantBase(key, marker, view), accept, undefined)
        return found !== undefined && variantMatches(found.entry, view) ? found : undefined
      }
      let found: Prepared | null | undefined
      if (typeof value === 'object' && value !== null) {
        found = this.#prepared.get(value)
        if (found === undefined) {
          found = prepare(k, value, this.maxBody) ?? null
          this.#prepared.set(value, found)
        }
      } else found = null // a foreign primitive at the key: a miss
      if (found === null) dropInvalid(backend, k)
      else if (servable(found, i === n, accept)) return found
    }
    return undefined
  }
}
