/**
 * Loading optional peer dependencies (client packages) on first use, so that
 * importing a backend module costs nothing without its client, and a missing
 * client is a {@link MissingDependencyError} naming the package to install.
 */
import { createRequire } from 'node:module'
import { MissingDependencyError } from './errors.js'

/** `require` from cachette's location, made on first use (workerd has no `import.meta.url` to make it from). */
let requireFrom: NodeJS.Require | undefined
function requireHere(): NodeJS.Require {
  requireFrom ??= createRequire(import.meta.url)
  return requireFrom
}
const loaded = new Map<string, unknown>()

/** Whether `error` says that `name` itself (not one of its dependencies) is not installed. */
function isMissing(error: unknown, name: string): boolean {
  const e = error as NodeJS.ErrnoException | undefined
  return e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes(`'${name}'`)
}

/**
 * `require(name)` once, from cachette's own location (tsup's shims give the
 * CommonJS build `import.meta.url`).
 * @param forWhat who needs it, for the error message (`'RedisCache'`).
 * @throws {MissingDependencyError} when the package is not installed.
 */
export function loadOptional<T>(name: string, forWhat: string): T {
  if (loaded.has(name)) return loaded.get(name) as T
  let mod: unknown
  try {
    mod = requireHere()(name)
  } catch (error) {
    if (isMissing(error, name)) throw new MissingDependencyError(name, forWhat, { cause: error })
    throw error
  }
  loaded.set(name, mod)
  return mod as T
}

/** Where an optional package resolves from cachette, for loading its own dependencies. */
export function resolveOptional(name: string): string {
  return requireHere().resolve(name)
}
