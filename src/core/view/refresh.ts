/**
 * Background refresh of a stale page (`grace`): the same request, sent to
 * the app's own server with {@link VIEW_REFRESH_HEADER} and the route's
 * secret token, renders the page again while clients are served the stale
 * one.
 */
import { randomBytes } from 'node:crypto'
import { requestInBackground } from '../background.js'
import type { Slot } from '../slot.js'
import type { RequestView } from './types.js'

/** The request header that marks a background refresh of a view; its value is the route's secret token. */
export const VIEW_REFRESH_HEADER = 'x-cachette-view-refresh'

/** The background refreshes of one `cached()` configuration. */
export class Refresher {
  /** The secret a background refresh request carries ({@link VIEW_REFRESH_HEADER}), so clients cannot force renders. */
  readonly token = randomBytes(16).toString('hex')
  /** Base keys with a background refresh under way or failed recently: until when not to start another. */
  readonly #refreshing = new Map<string, number>()

  /** @param backoffMs - how long after a refresh (that did not store a page) none is started, at least 1 s */
  constructor(private readonly backoffMs: number) {}

  /**
   * Starts a background refresh of the stale page at `key`: one at a time
   * per page; after one that did not store a page, none for `graceBackoff`.
   */
  start(view: RequestView<unknown>, key: string, slot: Slot): void {
    const until = this.#refreshing.get(key)
    if (until !== undefined && Date.now() < until) return
    const request = view.backgroundRequest?.()
    if (request === undefined) return
    this.#refreshing.set(key, Date.now() + Math.max(this.backoffMs, 1000))
    requestInBackground(
      request.url,
      { ...request.headers, [VIEW_REFRESH_HEADER]: this.token },
      (error) => slot.report(`cached ${key} (background refresh)`, error, key),
    )
  }

  /** The page at `key` was stored: the next time it is stale, refresh it at once. */
  stored(key: string): void {
    this.#refreshing.delete(key)
  }
}
