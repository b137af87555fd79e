/**
 * Single flight of view renders: the render under way for a page, which
 * requests missing the same page wait on instead of rendering it again
 * (across processes too, with its lock), and every render of this process
 * not yet settled ({@link viewsSettled}).
 */
import type { CacheBackend } from '../backend.js'
import { releaseLock, resolveTags, snapshotTags } from '../getorset.js'
import type { Slot } from '../slot.js'
import type { Pending, RequestView, ViewCacheOptions } from './types.js'

/**
 * Renders of this process not yet stored or abandoned, each with when
 * requests waiting for it give up (epoch ms): {@link viewsSettled} reads it.
 * One entry per miss, removed when the render settles.
 */
const rendering = new Map<Promise<void>, number>()

/**
 * Resolves once every view render started so far in this process has been
 * stored or abandoned (its response refused, or its client gone): after it, a
 * response's store decision has been made. A render that never settles counts
 * as abandoned once requests waiting for it would give up (`lock.wait`, or
 * 10 s, after it started). For tests and graceful shutdown; not part of the
 * public API.
 */
export function viewsSettled(): Promise<void> {
  if (rendering.size === 0) return Promise.resolve()
  const now = Date.now()
  const waits: Promise<void>[] = []
  for (const [done, until] of rendering) waits.push(within(done, until - now))
  return Promise.all(waits).then(() => undefined)
}

/** How long requests wait for another request's render of the same page, by default. */
export const DEFAULT_RENDER_WAIT_MS = 10_000

/** Resolves when `p` settles or after `ms`, whichever comes first. */
export function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms))
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** The renders of one `cached()` configuration, per slot (each app has its own backend) and key. */
export class Renders<Req> {
  readonly #pending = new WeakMap<Slot, Map<string, Pending>>()

  /**
   * @param waitMs - how long requests wait for a render (`lock.wait`, or 10 s)
   * @param tags - the route's `tags`, snapshotted when a render starts
   */
  constructor(
    readonly waitMs: number,
    private readonly tags: ViewCacheOptions<Req>['tags'],
  ) {}

  /** The render of `key` under way for `slot`'s app, if any. */
  current(slot: Slot, key: string): Pending | undefined {
    return this.#pending.get(slot)?.get(key)
  }

  /** A render of `key` that requests missing the same key wait on until it is settled. */
  lead(slot: Slot, key: string, view: RequestView<Req>, backend?: CacheBackend): Pending {
    let map = this.#pending.get(slot)
    if (map === undefined) {
      map = new Map()
      this.#pending.set(slot, map)
    }
    const pending = this.start(view, backend)
    map.set(key, pending)
    return pending
  }

  /**
   * A render no other request waits on (a forced one, or one after waiting),
   * counted by {@link viewsSettled}, with the tags' snapshot taken now.
   */
  start(view: RequestView<Req> | undefined, backend: CacheBackend | undefined): Pending {
    let settle!: () => void
    const done = new Promise<void>((resolve) => {
      settle = () => {
        rendering.delete(done)
        resolve()
      }
    })
    const started = Date.now()
    rendering.set(done, started + this.waitMs)
    const pending: Pending = { started, done, settle }
    const tags = this.tags
    if (tags !== undefined && view !== undefined && backend !== undefined) {
      const list = resolveTags(tags, [view.raw], 'cached')
      if (list.length > 0) pending.snapshot = snapshotTags(backend, list).catch(() => null)
    }
    return pending
  }

  /** Ends the render `pending` of `key`: requests waiting on it read the store again, and its lock is released. */
  settle(slot: Slot, key: string, pending: Pending): void {
    const map = this.#pending.get(slot)
    if (map?.get(key) === pending) map.delete(key)
    pending.settle()
    const held = pending.held
    if (held !== undefined) {
      pending.held = undefined
      const backend = slot.backend
      if (backend !== undefined) {
        releaseLock(backend, held).catch((error: unknown) =>
          slot.report(`cached ${key}`, error, key),
        )
      }
    }
  }
}
