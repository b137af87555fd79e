/**
 * The one Proxy cachette puts around a backend to replace some of its
 * methods: the guard (`core/guard.ts`: deadlines and the circuit breaker)
 * and the instrumenting wrapper (`core/events/instrument.ts`: timing,
 * counting, events) are both built here, and differ only in the
 * {@link WrapRules} they pass.
 *
 * What every wrapper keeps: it is the same object to whoever looks
 * (`instanceof`, getters such as `client` or `keyPrefix`, which run on the
 * real backend so private fields work), writes go to the backend itself,
 * and methods that are not replaced are bound to the backend, once each
 * (`wrapper.get === wrapper.get`, no allocation per call).
 */
import { boundTo } from './backend.js'

/** A backend method as the wrappers call it. */
export type BackendMethod = (this: unknown, ...args: unknown[]) => unknown

/** How {@link wrapBackend} forwards; see each field. */
export interface WrapRules {
  /**
   * The properties whose methods are replaced by `replace(prop, method)`.
   * A replacement is built on first use; a property that is not a function
   * on the backend (an optional method it lacks) reads as it is, unreplaced.
   */
  readonly replaced: ReadonlySet<PropertyKey>
  /** Builds the replacement of `method`, the backend's own `prop`. */
  readonly replace: (prop: PropertyKey, method: BackendMethod) => Function
  /**
   * How long a replacement is kept:
   * - `'per-method'`: while the backend's method stays the same; the
   *   backend is read on every access, and a method assigned to it later
   *   gets a replacement of its own;
   * - `'forever'`: from the first access on, without reading the backend
   *   again (the fastest: one lookup per access). For replacements that
   *   look the backend's method up themselves when called.
   */
  readonly keep: 'per-method' | 'forever'
  /** Properties the wrapper answers itself, without looking at the backend (`in` still asks the backend). */
  readonly answers?: ReadonlyMap<PropertyKey, unknown>
  /** Properties the wrapper hides: they read as `undefined` and `in` says false. */
  readonly hidden?: ReadonlySet<PropertyKey>
  /**
   * What the wrapper hands out for the backend's other function-valued
   * properties (never `constructor`, which is handed out as it is):
   * - `'bind-all'`: each bound to the backend;
   * - `'bind-inherited'`: methods from the prototype chain bound to the
   *   backend, its own function-valued properties handed out as they are
   *   (they are data: a callback, a method patched onto the instance).
   */
  readonly bind: 'bind-all' | 'bind-inherited'
}

/** A replacement, kept with the method it replaces. */
interface Replacement {
  readonly original: unknown
  readonly fn: Function
}

/** `backend` behind a Proxy that forwards by `rules`. */
export function wrapBackend<B extends object>(backend: B, rules: WrapRules): B {
  const { replaced, replace, answers, hidden } = rules
  const bindOwn = rules.bind === 'bind-all'
  const perMethod = rules.keep === 'per-method'
  // A prototype-less record, so any property key indexes it.
  const replacements: Record<PropertyKey, Replacement | undefined> = Object.create(null)
  const bound = new Map<Function, Function>()
  const handler: ProxyHandler<B> = {
    get(target, prop) {
      const kept = replacements[prop]
      if (kept !== undefined && !perMethod) return kept.fn
      if (answers?.has(prop)) return answers.get(prop)
      if (hidden?.has(prop)) return undefined
      // The target as receiver: getters run on the real object (private fields work).
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (replaced.has(prop)) {
        if (kept !== undefined && kept.original === value) return kept.fn
        const fn = replace(prop, value as BackendMethod)
        replacements[prop] = { original: value, fn }
        return fn
      }
      if (prop === 'constructor' || (!bindOwn && Object.hasOwn(target, prop))) return value
      return boundTo(target, value, bound)
    },
    // Setters run on the backend itself (its accessors may use private fields).
    set(target, prop, value) {
      return Reflect.set(target, prop, value, target)
    },
  }
  if (hidden !== undefined && hidden.size > 0) {
    handler.has = (target, prop) => !hidden.has(prop) && Reflect.has(target, prop)
  }
  return new Proxy(backend, handler)
}
