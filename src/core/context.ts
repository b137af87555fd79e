import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * The app whose request is being served, so that one `Cache` serving several
 * apps picks the right backend (Flask's `current_app`). Framework adapters set
 * it per request; code outside a request sees `undefined`.
 */
export const appContext: AsyncLocalStorage<object> = new AsyncLocalStorage<object>()

/** Runs `fn` with `app` as the current app. */
export function runWithApp<R>(app: object, fn: () => R): R {
  return appContext.run(app, fn)
}
