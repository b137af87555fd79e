/**
 * Which JavaScript runtime cachette runs on, and Node built-in modules loaded
 * on first use. Modules that only some backends need (`node:v8`, `node:fs`,
 * `node:cluster`) are not imported at the top of a module: Cloudflare's
 * workerd has none of them, even with `nodejs_compat`, and a static import of
 * a module it lacks stops the whole Worker from starting. Loaded through
 * `process.getBuiltinModule` (Node 20.16+, Bun, Deno, workerd) or, on older
 * Node, `require`.
 */
import * as nodeModule from 'node:module'

/** The runtimes cachette tells apart. */
export type RuntimeName = 'Node' | 'Bun' | 'Deno' | 'workerd'

/** The runtime this process is, from `navigator.userAgent` and the runtimes' own globals. */
export function runtimeName(): RuntimeName {
  const g = globalThis as { Bun?: unknown; Deno?: unknown; navigator?: { userAgent?: unknown } }
  if (g.Bun !== undefined) return 'Bun'
  if (g.Deno !== undefined) return 'Deno'
  if (g.navigator?.userAgent === 'Cloudflare-Workers') return 'workerd'
  return 'Node'
}

/**
 * A Node built-in the runtime lacks, needed by a backend or feature: thrown
 * when it is used (a backend's constructor), never when a module is imported.
 */
export class UnsupportedRuntimeError extends Error {
  /** Always `'ERR_CACHETTE_UNSUPPORTED_RUNTIME'`. */
  readonly code = 'ERR_CACHETTE_UNSUPPORTED_RUNTIME' as const
  /** The runtime that lacks it. */
  readonly runtime: RuntimeName
  constructor(message: string, runtime: RuntimeName) {
    super(message)
    this.name = 'UnsupportedRuntimeError'
    this.runtime = runtime
  }
}

const loaded = new Map<string, unknown>()

/** `name` (`'node:fs'`) from the runtime, or `undefined` when it has no such module. */
export function tryNodeBuiltin<T>(name: string): T | undefined {
  if (loaded.has(name)) return loaded.get(name) as T
  let mod: unknown
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  if (typeof p?.getBuiltinModule === 'function') {
    mod = p.getBuiltinModule(name)
  } else {
    try {
      mod = nodeModule.createRequire(import.meta.url)(name)
    } catch {
      mod = undefined
    }
  }
  if (mod !== undefined) loaded.set(name, mod)
  return mod as T | undefined
}

/**
 * `name` (`'node:fs'`) from the runtime.
 * @param forWhat who needs it, for the message (`'FileSystemCache'`)
 * @param instead what to use where it is missing (`'SimpleCache or CloudflareKVCache'`)
 * @throws {UnsupportedRuntimeError} when the runtime has no such module (workerd has no `node:fs`)
 */
export function nodeBuiltin<T>(name: string, forWhat: string, instead: string): T {
  const mod = tryNodeBuiltin<T>(name)
  if (mod !== undefined) return mod
  const runtime = runtimeName()
  throw new UnsupportedRuntimeError(
    `${forWhat} needs Node's ${name.replace(/^node:/, '')} module, which ${runtime} does not have; on ${runtime} use ${instead}`,
    runtime,
  )
}
