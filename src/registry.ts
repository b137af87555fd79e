import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CloudflareKVCache } from './backends/cloudflare-kv/index.js'
import { ClusterCache } from './backends/cluster/index.js'
import { FileSystemCache } from './backends/filesystem/index.js'
import { GoogleCloudStorageCache } from './backends/gcs/index.js'
import { KeyvCache } from './backends/keyv/index.js'
import {
  MemcachedCache,
  SASLMemcachedCache,
  SpreadSASLMemcachedCache,
} from './backends/memcached/index.js'
import { SimpleCache } from './backends/memory/index.js'
import { NullCache } from './backends/null/index.js'
import { RedisCache, RedisClusterCache, RedisSentinelCache } from './backends/redis/index.js'
import { S3Cache } from './backends/s3/index.js'
import type { BackendClass, BackendFactory, CacheBackend } from './core/backend.js'
import { ConfigError } from './core/errors.js'

/** A resolved `CACHE_TYPE`: something that builds a backend. */
export type BackendBuilder = BackendFactory

type Loader = () => BackendClass | Promise<BackendClass>

interface Known {
  readonly name: string
  readonly load: Loader
}

const known = (name: string, load: Loader): Known => ({ name, load })

/**
 * The `CACHE_TYPE` names: Flask-Caching's class names and the old lower-case
 * aliases. Every built-in backend is imported statically, so a named backend
 * resolves synchronously: `new Cache({ CACHE_TYPE: 'S3Cache' })` throws its
 * ConfigError (or MissingDependencyError) at construction and `cache.backend`
 * is there at once. Their client packages (ioredis, @aws-sdk/client-s3,
 * @google-cloud/storage) are loaded only when a backend is constructed
 * (core/optional.ts), so importing `cachette` loads none of them.
 */
const BACKENDS = new Map<string, Known>()
const TABLE: [name: string, load: Loader, ...aliases: string[]][] = [
  ['NullCache', () => NullCache, 'null'],
  ['SimpleCache', () => SimpleCache, 'simple'],
  ['FileSystemCache', () => FileSystemCache, 'filesystem'],
  // Node has no uWSGI: its shared-memory cache maps to the node:cluster one (the factory says so once).
  ['ClusterCache', () => ClusterCache, 'cluster', 'UWSGICache', 'uwsgi'],
  // The Redis backends load ioredis only when constructed (a missing client is
  // a MissingDependencyError naming it), so listing them here costs nothing.
  ['RedisCache', () => RedisCache, 'redis'],
  ['RedisSentinelCache', () => RedisSentinelCache, 'redissentinel'],
  ['RedisClusterCache', () => RedisClusterCache, 'rediscluster'],
  // cachette's own memcached client: no package to load.
  ['MemcachedCache', () => MemcachedCache, 'memcached', 'gaememcached'],
  ['SASLMemcachedCache', () => SASLMemcachedCache, 'saslmemcached'],
  ['SpreadSASLMemcachedCache', () => SpreadSASLMemcachedCache, 'spreadsaslmemcached'],
  // Loads @aws-sdk/client-s3 when constructed; 'flask_caching_s3.S3Cache' resolves by its last part.
  ['S3Cache', () => S3Cache, 's3'],
  // Loads @google-cloud/storage when constructed; Flask's contrib path resolves by its last part.
  ['GoogleCloudStorageCache', () => GoogleCloudStorageCache],
  // Any Keyv storage adapter, given as CACHE_OPTIONS: { store }; loads no package itself.
  ['KeyvCache', () => KeyvCache, 'keyv'],
  // A Workers KV namespace given as CACHE_OPTIONS: { namespace: env.CACHE }; plain Web APIs, no Node built-ins.
  ['CloudflareKVCache', () => CloudflareKVCache, 'cloudflarekv'],
]
for (const [name, load, ...aliases] of TABLE) {
  const entry = known(name, load)
  BACKENDS.set(name, entry)
  for (const alias of aliases) BACKENDS.set(alias, entry)
}

/**
 * Whether `backend` is the NullCache (caching disabled), for the facade's
 * warning: the registry knows the backend classes, the facade does not.
 */
export function isNullBackend(backend: CacheBackend): boolean {
  return backend instanceof NullCache
}

function isClass(fn: Function): boolean {
  return Function.prototype.toString.call(fn).startsWith('class')
}

/** Turns a backend class into a builder: its static `factory` if it has one, else `new Cls(...args, options)`. */
function builderOfClass(cls: BackendClass): BackendBuilder {
  if (typeof cls.factory === 'function') return cls.factory.bind(cls)
  return (_app, _config, args, options) =>
    new (cls as unknown as new (...a: unknown[]) => CacheBackend)(...args, options)
}

function fromLoaded(value: unknown, label: string): BackendBuilder {
  if (typeof value !== 'function') {
    throw new ConfigError('CACHE_TYPE', `${label} is not a backend class or factory function`)
  }
  const fn = value as Function
  if ('factory' in fn || isClass(fn)) return builderOfClass(fn as BackendClass)
  return fn as BackendBuilder
}

/**
 * Resolves `CACHE_TYPE` to a builder. Accepts a class name or alias
 * (`'SimpleCache'`, `'simple'`), a dotted Flask path whose last part is a class
 * name (`'flask_caching.backends.SimpleCache'`, `'cachelib.SimpleCache'`), a
 * backend class, a factory function, or `'module#Export'` (a path relative to
 * the working directory or a package name; `#default` when omitted).
 * Synchronous when it can be; a module specifier resolves asynchronously.
 */
export function resolveBackendType(type: unknown): BackendBuilder | Promise<BackendBuilder> {
  if (typeof type === 'function') return fromLoaded(type, type.name || 'CACHE_TYPE')
  if (typeof type !== 'string' || type.length === 0) {
    throw new ConfigError(
      'CACHE_TYPE',
      `expected a backend name, class, factory function or 'module#Export', got ${type === null ? 'null' : typeof type}`,
    )
  }
  if (type.includes('#') || type.startsWith('.') || type.startsWith('/')) return loadModule(type)
  const name = type.includes('.') ? type.slice(type.lastIndexOf('.') + 1) : type
  const entry = BACKENDS.get(name)
  if (entry === undefined) {
    const names = [...new Set([...BACKENDS.values()].map((k) => k.name))].join(', ')
    throw new ConfigError('CACHE_TYPE', `unknown backend ${JSON.stringify(type)}; known: ${names}`)
  }
  const loaded = entry.load()
  return loaded instanceof Promise
    ? loaded.then((cls) => builderOfClass(cls))
    : builderOfClass(loaded)
}

async function loadModule(spec: string): Promise<BackendBuilder> {
  const hash = spec.lastIndexOf('#')
  const path = hash >= 0 ? spec.slice(0, hash) : spec
  const exportName = hash >= 0 ? spec.slice(hash + 1) || 'default' : 'default'
  const url =
    path.startsWith('.') || isAbsolute(path)
      ? pathToFileURL(resolve(process.cwd(), path)).href
      : path
  let mod: Record<string, unknown>
  try {
    mod = (await import(url)) as Record<string, unknown>
  } catch (error) {
    throw new ConfigError(
      'CACHE_TYPE',
      `cannot import ${JSON.stringify(path)}: ${(error as Error).message}`,
      {
        cause: error,
      },
    )
  }
  if (!(exportName in mod)) {
    throw new ConfigError(
      'CACHE_TYPE',
      `${JSON.stringify(path)} has no export ${JSON.stringify(exportName)}`,
    )
  }
  return fromLoaded(mod[exportName], spec)
}
