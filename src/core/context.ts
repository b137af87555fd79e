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

/**
 * Makes every request of an app run with that app as the current app, for
 * one framework. Returns `false` when `app` is not of its framework.
 * `Cache.initApp` calls them in turn until one recognises the app. The
 * `cachette` entry registers Express's; `cachette/fastify`, `cachette/koa`
 * and `cachette/hono` register theirs when they load (and again, idempotently,
 * when their middleware is created). Those built files are the package's
 * declared `sideEffects`, so bundlers keep a bare `import 'cachette/koa'`.
 */
export type AppBinder = (app: object) => boolean

const binders: AppBinder[] = []

/** Registers an {@link AppBinder} (idempotent). */
export function registerAppBinder(binder: AppBinder): void {
  if (!binders.includes(binder)) binders.push(binder)
}

/** Binds `app` with the first binder that recognises it; `false` if none did. */
export function bindApp(app: object): boolean {
  for (const binder of binders) if (binder(app)) return true
  return false
}
