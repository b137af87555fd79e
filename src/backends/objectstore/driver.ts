/**
 * Internal: the port between {@link ObjectStoreCache} (the cache logic both
 * object-store backends share) and one store's client. A driver speaks its
 * store's requests and nothing else: it parses the expiry an object carries,
 * maps "not found" and "precondition failed" to answers, batches deletes as
 * the store allows, and puts a deadline on every request it sends (the
 * stores differ in what one request is: an S3 `GetObject` brings metadata
 * and bytes, GCS needs two). Keys, encoding, expiry rules, conditional-write
 * algorithms, multi-key composition and errors of the cache are not its
 * business.
 */

/** What a driver knows of an object without its bytes. */
export interface ObjectMeta {
  /** The absolute expiry, ms since the epoch; `undefined` = never. */
  expiresAt: number | undefined
  /**
   * What a conditional write or delete matches: S3's ETag, GCS's
   * generation. `undefined` when the store did not say.
   */
  version: string | undefined
}

/**
 * What `read` found: the metadata, and the bytes when the object is live.
 * `body` is `undefined` for an expired object, whose bytes are not fetched.
 */
export interface StoredObject {
  meta: ObjectMeta
  body: Buffer | undefined
}

/** `read`'s answer when the object was replaced or deleted between its metadata and its bytes. */
export const CHANGED = 'changed'

/** What a conditional write requires: no object at all, or exactly this version. */
export type WriteCondition = { ifAbsent: true } | { ifVersion: string }

/** An object to delete: its name, and the version to delete where the store can be that precise. */
export interface ObjectRef {
  name: string
  version?: string | undefined
}

/** A listed object: its name, with its version or expiry when the listing asked for them and the store has them. */
export interface ListedObject extends ObjectRef {
  /** Absent: never expires, or the listing cannot say (S3 listings carry no metadata). */
  expiresAt?: number | undefined
}

/**
 * An object a batch delete left: its name, and the store's error when it
 * gave one (S3's `DeleteObjects` reports failed keys without an error object).
 */
export interface RemoveFailure {
  name: string
  error?: unknown
}

/**
 * One store's side of an object-store cache. Every method takes `op`, the
 * cache operation it serves (`'get'`, `'clear'`, ...), for its deadline's and
 * its errors' messages (`S3Cache.get: no answer within 2000 ms`).
 */
export interface ObjectStoreDriver {
  /** The object's metadata (S3 `HeadObject`, GCS `objects.get`), or `undefined` when there is none. */
  stat(name: string, op: string): Promise<ObjectMeta | undefined>
  /**
   * The object's metadata and, when it is live, its bytes. With `purge`, an
   * expired object is deleted before `read` resolves (only the version read,
   * where the store can: GCS). {@link CHANGED} when the object was replaced
   * or deleted between its metadata and its bytes.
   */
  read(name: string, op: string, purge: boolean): Promise<StoredObject | typeof CHANGED | undefined>
  /**
   * Writes the object with its expiry in its metadata. With a `condition`,
   * resolves `false` when the store refused it (the precondition failed);
   * any other failure rejects.
   */
  write(
    name: string,
    body: Buffer,
    expiresAt: number | undefined,
    op: string,
    condition?: WriteCondition,
  ): Promise<boolean>
  /**
   * Deletes one object (only `version`, where the store can: GCS).
   * Resolves whether this call deleted it: `false` when it was already gone
   * or replaced (a store that cannot tell, S3, resolves `true`).
   */
  remove(name: string, op: string, version?: string): Promise<boolean>
  /**
   * Deletes objects, batched as the store allows (S3 `DeleteObjects` of up
   * to 1,000, GCS one request each, in parallel); an absent object counts as
   * deleted. Resolves the objects left; rejects when the store refused a
   * whole batch.
   */
  removeMany(objects: readonly ObjectRef[], op: string): Promise<RemoveFailure[]>
  /**
   * The objects whose names start with `prefix` (`''`: the whole bucket), a
   * page at a time. `fields` says what the caller needs of each: `'versions'`
   * to delete them (`clear`), `'expiry'` to leave out expired ones (`keys`).
   */
  list(prefix: string, op: string, fields: 'versions' | 'expiry'): AsyncIterable<ListedObject[]>
  /** Releases what the driver opened (a client it created). */
  close(): Promise<void>
}
