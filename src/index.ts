/**
 * cachette: caching for Node.js web apps. The root entry holds the `Cache`
 * facade, the in-process backends, key helpers, serializers and errors;
 * framework adapters and client-backed backends live on their own subpaths.
 * @packageDocumentation
 *
 * @module cachette
 */

import { provideCachedMiddleware } from './cache.js'
import { registerAppBinder } from './core/context.js'
import { bindExpress, createCachedMiddleware } from './frameworks/express/middleware.js'

// The facade imports no framework adapter; this entry wires in the one it offers
// itself: `cache.cached()` is Express/Connect middleware, and `initApp` binds
// Express apps. Explicit calls in the entry (package.json lists this file in
// "sideEffects"), not a registration hidden in an import.
provideCachedMiddleware(createCachedMiddleware)
registerAppBinder(bindExpress)

export {
  ClusterCache,
  type ClusterCacheClass,
  type ClusterCacheHost,
  type ClusterCacheOptions,
  type ClusterServeOptions,
  isCachetteMessage,
} from './backends/cluster/index.js'
export { FileSystemCache, type FileSystemCacheOptions } from './backends/filesystem/index.js'
export { SimpleCache, type SimpleCacheOptions } from './backends/memory/index.js'
export { NullCache } from './backends/null/index.js'
export { TieredCache, type TieredCacheOptions } from './backends/tiered/index.js'
export { Cache, type SetOptions } from './cache.js'
export type { CacheConfig, CacheConfigFlask, CacheOptionsCamel, CacheType } from './config-types.js'
export {
  type BackendClass,
  type BackendFactory,
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  type CacheBackend,
  integerOf,
} from './core/backend.js'
export {
  type Bus,
  type BusClearMessage,
  type BusDeleteMessage,
  type BusFactory,
  type BusFactoryContext,
  type BusListener,
  type BusMessage,
  type BusSubscription,
  decodeBusMessage,
  encodeBusMessage,
  MemoryBus,
} from './core/bus.js'
export { decodeValue, encodeValue } from './core/codec.js'
export { CONFIG_KEYS } from './core/config.js'
export { appContext, runWithApp } from './core/context.js'
export { parseTimeout, type Timeout } from './core/duration.js'
export {
  CachetteError,
  type CachetteErrorCode,
  type CauseOptions,
  ConfigError,
  CorruptEntryError,
  DeleteManyError,
  InvalidKeyError,
  InvalidTimeoutError,
  MissingDependencyError,
  NotAnIntegerError,
  UnserializableValueError,
} from './core/errors.js'
export {
  type AsyncStorage,
  type BackendOperation,
  type BackendTotals,
  type CacheEventName,
  type CacheEvents,
  type CacheListener,
  type CacheStats,
  type ErrorEvent,
  type KeyEvent,
  OPERATION_CHANNEL,
  type OperationChannel,
  type OperationChannelHandlers,
  type OperationCount,
  type OperationEvent,
  type OperationStatus,
  type OperationSubChannel,
  type Outcome,
  type OutcomeCounts,
  type OutcomeKind,
  observeAllCaches,
  operationChannel,
} from './core/events.js'
export type {
  GetOrSetOptions,
  LockOptions,
} from './core/getorset.js'
export {
  BackendGuard,
  BackendTimeoutError,
  type CircuitBreakerOptions,
  CircuitOpenError,
  type CircuitState,
  type GuardOptions,
  guardBackend,
  guardOf,
} from './core/guard.js'
export { type HashMethod, SUPPORTED_HASH_FUNCTIONS } from './core/hash.js'
export { makeTemplateFragmentKey, TEMPLATE_FRAGMENT_KEY_PREFIX } from './core/keys.js'
export type { Logger } from './core/log.js'
export type {
  MemoizableFunction,
  MemoizeDecorator,
  MemoizedFunction,
  MemoizeOptions,
} from './core/memoize.js'
export { StoreTimeoutError } from './core/objectstore.js'
export { portableSerializer } from './core/portable.js'
export { type RuntimeName, runtimeName, UnsupportedRuntimeError } from './core/runtime.js'
export {
  jsonSerializer,
  type Serializer,
  type SerializerSpec,
  v8Serializer,
} from './core/serializers.js'
