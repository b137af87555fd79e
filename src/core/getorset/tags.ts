/**
 * Tag invalidation: a tag is a token in the backend; an entry records its
 * tags' tokens when computed and is gone once one of them changed. Tokens,
 * not timestamps, so clock skew between machines cannot matter.
 */
import type { CacheBackend } from '../backend.js'
import { newToken, readMany, tokensFor } from './tokens.js'

const MAX_TAG_LENGTH = 200
const MAX_TAGS = 64

/**
 * Checks a tag list; returns it without duplicates. Throws a TypeError
 * naming the bad tag.
 */
export function checkTags(tags: unknown, what: string): readonly string[] {
  if (tags === undefined) return []
  if (!Array.isArray(tags)) throw new TypeError(`${what}: tags must be an array of strings`)
  if (tags.length > MAX_TAGS) throw new TypeError(`${what}: at most ${MAX_TAGS} tags per entry`)
  for (const t of tags) {
    if (typeof t !== 'string' || t === '' || t.length > MAX_TAG_LENGTH) {
      throw new TypeError(
        `${what}: a tag must be a non-empty string of at most ${MAX_TAG_LENGTH} characters, got ${typeof t === 'string' ? JSON.stringify(t.slice(0, 40)) : typeof t}`,
      )
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
    if (/[\u0000-\u001f\u007f]/.test(t)) {
      throw new TypeError(`${what}: the tag ${JSON.stringify(t)} contains a control character`)
    }
  }
  return tags.length < 2 ? tags : [...new Set(tags as string[])]
}

/**
 * The tags of one call: a list, or a function of the call's arguments
 * (memoize) or request (views), checked.
 */
export function resolveTags(
  tags: readonly string[] | ((...args: never[]) => readonly string[]) | undefined,
  args: readonly unknown[],
  what: string,
): readonly string[] {
  if (tags === undefined) return []
  return checkTags(typeof tags === 'function' ? tags(...(args as never[])) : tags, what)
}

/** The backend key of a tag's token. */
export function tagKey(tag: string): string {
  return `_cachette_tag_${tag}`
}

/** The `[tag, token]` snapshot of `tags` now. */
export async function snapshotTags(
  backend: CacheBackend,
  tags: readonly string[],
): Promise<[string, string][]> {
  const tokens = await tokensFor(backend, tags.map(tagKey))
  return tags.map((t, i) => [t, tokens[i] as string])
}

/** Makes every entry tagged with one of `tags` a miss: each tag gets a new token. */
export async function invalidateTags(
  backend: CacheBackend,
  tags: readonly string[],
): Promise<void> {
  if (tags.length === 0) return
  await backend.setMany(
    tags.map((t) => [tagKey(t), newToken()] as const),
    0,
  )
}

/** Whether a tag snapshot still holds (no tag was invalidated since). */
export async function tagsHold(
  backend: CacheBackend,
  snapshot: readonly (readonly [string, string])[] | undefined,
): Promise<boolean> {
  if (snapshot === undefined || snapshot.length === 0) return true
  const now = await readMany(
    backend,
    snapshot.map(([t]) => tagKey(t)),
  )
  return snapshot.every(([, token], i) => now[i] === token)
}
