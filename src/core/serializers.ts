import { describe } from './describe.js'
import { ConfigError, UnserializableValueError } from './errors.js'
import { portableSerializer } from './portable.js'
import { tryNodeBuiltin } from './runtime.js'

/** `node:v8`, loaded on first use: workerd has none, and a static import would stop a Worker from starting. */
let v8: typeof import('node:v8') | null | undefined

function v8Module(): typeof import('node:v8') | null {
  if (v8 === undefined) v8 = tryNodeBuiltin<typeof import('node:v8')>('node:v8') ?? null
  return v8
}

/**
 * Turns values into bytes and back. Backends that store bytes (filesystem,
 * Redis, Memcached, S3, GCS) use it for every value; the in-memory backend uses
 * it for objects only (primitives are immutable and kept as they are).
 *
 * `dumps` must throw (preferably a `TypeError`) for a value it cannot represent;
 * it must never return a lossy encoding silently.
 */
export interface Serializer {
  /** A short name for logs and the CLI. */
  readonly name: string
  /** Encodes a value. Throws for values it cannot represent. */
  dumps(value: unknown): Uint8Array
  /** Decodes what `dumps` produced. */
  loads(data: Uint8Array): unknown
}

/**
 * The default: V8's structured-clone format (`node:v8`). Binary, fast, built in,
 * and safe to read (it cannot run code, unlike pickle). Round-trips strings,
 * numbers, booleans, null, arrays, plain objects, Date, Map, Set, RegExp,
 * Error, Buffer and every TypedArray, BigInt and circular structures. Class
 * instances come back as plain objects. Functions and symbols are rejected.
 *
 * Where the runtime has no `node:v8` (Cloudflare's workerd), it encodes with
 * the portable serializer instead (tagged JSON, the same types but no cycles),
 * so in-process caching works there unchanged.
 */
export const v8Serializer: Serializer = {
  name: 'v8',
  dumps(value) {
    const mod = v8Module()
    if (mod === null) return portableSerializer.dumps(value)
    try {
      return mod.serialize(value)
    } catch (error) {
      throw new UnserializableValueError(
        `cannot store ${describeDeep(value)}: ${(error as Error).message}`,
        { cause: error },
      )
    }
  },
  loads(data) {
    const mod = v8Module()
    return mod === null ? portableSerializer.loads(data) : mod.deserialize(data)
  },
}

function describeDeep(value: unknown): string {
  return typeof value === 'object' && value !== null ? 'this value' : describe(value)
}

function strictReplacer(this: unknown, key: string, value: unknown): unknown {
  const t = typeof value
  if (t === 'function' || t === 'symbol' || (t === 'undefined' && key === '')) {
    throw new UnserializableValueError(
      `cannot store ${describe(value)}${key ? ` at key ${JSON.stringify(key)}` : ''} as JSON`,
    )
  }
  if (t === 'bigint') {
    throw new UnserializableValueError(
      `cannot store a BigInt${key ? ` at key ${JSON.stringify(key)}` : ''} as JSON (use the v8 serializer)`,
    )
  }
  return value
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Plain JSON, for data that other languages read. Lossy by nature (Date becomes
 * a string, Map/Set/Buffer do not survive), so it is an explicit opt-in:
 * `CACHE_SERIALIZER: 'json'`. Functions, symbols, BigInt and cycles are rejected
 * with a TypeError instead of being dropped silently.
 */
export const jsonSerializer: Serializer = {
  name: 'json',
  dumps(value) {
    try {
      return encoder.encode(JSON.stringify(value, strictReplacer))
    } catch (error) {
      if (error instanceof UnserializableValueError) throw error
      throw new UnserializableValueError(
        `cannot store value as JSON: ${(error as Error).message}`,
        {
          cause: error,
        },
      )
    }
  },
  loads(data) {
    return JSON.parse(decoder.decode(data))
  },
}

/** What `CACHE_SERIALIZER` accepts: a name, a serializer object, or a class with a no-argument constructor. */
export type SerializerSpec = 'v8' | 'json' | 'portable' | Serializer | (new () => Serializer)

/** Resolves a {@link SerializerSpec}; throws {@link ConfigError} naming `key` otherwise. */
export function resolveSerializer(spec: unknown, key = 'CACHE_SERIALIZER'): Serializer {
  if (spec === undefined || spec === null || spec === 'v8') return v8Serializer
  if (spec === 'json') return jsonSerializer
  if (spec === 'portable') return portableSerializer
  let candidate: unknown = spec
  if (typeof spec === 'function') {
    try {
      candidate = new (spec as new () => unknown)()
    } catch (error) {
      throw new ConfigError(key, `couldn't instantiate serializer ${spec.name || ''}`, {
        cause: error,
      })
    }
  }
  if (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof (candidate as Serializer).dumps === 'function' &&
    typeof (candidate as Serializer).loads === 'function'
  ) {
    const s = candidate as Serializer
    // A custom serializer's TypeError means "cannot store this value" (its contract):
    // an input error, told apart from a backend failure by its code.
    return {
      name: s.name || 'custom',
      dumps: (v) => {
        try {
          return s.dumps(v)
        } catch (error) {
          if (error instanceof TypeError && !(error instanceof UnserializableValueError)) {
            throw new UnserializableValueError(`cannot store this value: ${error.message}`, {
              cause: error,
            })
          }
          throw error
        }
      },
      loads: (d) => s.loads(d),
    }
  }
  throw new ConfigError(
    key,
    `expected 'v8', 'json', 'portable', an object with dumps()/loads(), or a class producing one; got ${describe(spec)}`,
  )
}
