import { argumentsKey } from './argkey.js'
import { type CacheBackend, PEEK, type PeekableBackend } from './backend.js'
import { parseTimeout, type Timeout } from './duration.js'
import {
  type Computation,
  checkTags,
  type GetOrSetOptions,
  getOrCompute,
  isEntry,
  newToken,
  type Policy,
  policyOf,
  resolveTags,
  tokensFor,
} from './getorset.js'
import { base64urlDigest, type DigestFn, type HashMethod, resolveHashMethod } from './hash.js'
import { callerSite, instanceIdentity, objectToken, parameterNames } from './identity.js'
import { isThenable } from './promise.js'
import type { Slot, SlotSettings } from './slot.js'

/**
 * Any function `cache.memoize` can wrap. Written as a method's type, whose
 * parameters TypeScript compares both ways, so that every function is
 * assignable to it without `any` (or `never`) in the inferred types.
 */
export type MemoizableFunction = {
  /** Any function. */
  fn(...args: unknown[]): unknown
}['fn']

/** The arguments of a memoized function `F`, as its callbacks receive them. */
export type MemoizeArgs<F extends MemoizableFunction> = Parameters<F>

/** What a memoized function `F` resolves to: the value its callbacks see. */
export type MemoizeResult<F extends MemoizableFunction> = Awaited<ReturnType<F>>

/**
 * Options of `cache.memoize()`; the camelCase of Flask-Caching's `memoize()`
 * parameters. `F` is the memoized function: the callbacks receive its
 * arguments and its result, typed from it (`cache.memoize(fn, options)`
 * infers it; the decorator form `cache.memoize(options)` cannot know the
 * method yet, so its callbacks take `unknown`s unless they say otherwise).
 */
export interface MemoizeOptions<F extends MemoizableFunction = MemoizableFunction> {
  /** Seconds (or a duration string) results live; `undefined` = `CACHE_DEFAULT_TIMEOUT`, `0` = forever. */
  timeout?: Timeout
  /**
   * Replaces the function's name in its keys. It receives the default name
   * (`file:line:column:functionName`) and returns the name to use. Give a
   * fixed name (`() => 'users.load'`) to keep entries across deploys that move
   * the function, or to share them between different builds.
   */
  makeName?: (defaultName: string) => string
  /** Skips the cache entirely (no read, no write) when it returns exactly `true`. Receives `(fn, ...args)`. */
  unless?(fn: F, ...args: MemoizeArgs<F>): boolean | Promise<boolean>
  /** Recomputes and overwrites when it returns exactly `true`. Receives the call's arguments. */
  forcedUpdate?(...args: MemoizeArgs<F>): boolean | Promise<boolean>
  /** Called on a hit with `(value, ...args)`; exactly `true` makes it a miss. */
  isStale?(value: MemoizeResult<F>, ...args: MemoizeArgs<F>): boolean | Promise<boolean>
  /** Called with a fresh result; a falsy return keeps it out of the cache (it is still returned). */
  responseFilter?(value: MemoizeResult<F>): unknown
  /**
   * Hash for keys; defaults to `CACHE_HASH_METHOD`. It hashes the function's
   * name (and source, with `sourceCheck`) once, into the 22-character start
   * of every key, and each argument text over `RAW_KEY_MAX` (128)
   * characters; shorter argument texts are in the key as they are, unhashed.
   * Arguments are attacker-controlled: keep a collision-resistant hash (the
   * default SHA-256), not MD5 or SHA-1, where long arguments come from users.
   */
  hashMethod?: HashMethod
  /**
   * Whether a `null` result is cached. `undefined` results never are (undefined
   * means a miss). Unlike Flask-Caching no extra `has` round trip is needed,
   * since a stored `null` and a miss are distinguishable.
   * @default false
   */
  cacheNone?: boolean
  /** Whether the function's source is part of the key; defaults to `CACHE_SOURCE_CHECK`. */
  sourceCheck?: boolean
  /**
   * Arguments left out of the key, by position (`0`) or parameter name
   * (`'verbose'`). `'this'` (or `'self'`) drops the instance from method keys,
   * so all instances share entries.
   */
  argsToIgnore?: readonly (string | number)[]
  /** See `GetOrSetOptions.grace`: serve a stale result at once while one background call refreshes it. */
  grace?: GetOrSetOptions['grace']
  /** See `GetOrSetOptions.graceBackoff`. */
  graceBackoff?: GetOrSetOptions['graceBackoff']
  /**
   * Tags of each result, for `cache.invalidateTags`: a list, or a function
   * of the call's arguments (`(id) => [\`user:${id}\`]`).
   */
  tags?: readonly string[] | MemoizeTags<F>
  /** See `GetOrSetOptions.lock`: one call across processes for a missing result. */
  lock?: GetOrSetOptions['lock']
}

/**
 * The function form of {@link MemoizeOptions.tags}: the tags of a call, from
 * its arguments. A method's type, as the other callbacks are methods, so that
 * the decorator form (whose `F` is unknown) accepts `(id: number) => ...` too.
 */
export type MemoizeTags<F extends MemoizableFunction = MemoizableFunction> = {
  tags(...args: MemoizeArgs<F>): readonly string[]
}['tags']

/** A memoized function: the same call signature (always async), plus Flask-Caching's attributes. */
export type MemoizedFunction<F extends MemoizableFunction> = ((
  this: ThisParameterType<F>,
  ...args: Parameters<F>
) => Promise<Awaited<ReturnType<F>>>) & {
  /** The original function. */
  readonly uncached: F
  /** The timeout used for new entries; assignable. */
  cacheTimeout: Timeout | undefined
  /** The name in this function's keys (see {@link MemoizeOptions.makeName}). */
  readonly memoizeName: string
  /** The cache key a call with these arguments uses (creates version keys if missing). */
  makeCacheKey(...args: Parameters<F>): Promise<string>
  /** Invalidates every result of this function. */
  deleteMemoized(): Promise<void>
}

/**
 * What `cache.memoize(options)` returns: a decorator for class methods, in
 * standard (TC39) and legacy (`experimentalDecorators`) form, that also wraps
 * a plain function when called with one.
 */
export interface MemoizeDecorator {
  /**
   * Wraps a function.
   *
   * @typeParam F - The function wrapped.
   */
  <F extends MemoizableFunction>(fn: F): MemoizedFunction<F>
  /** Standard (TC39) method decorator. The method must return a promise. */
  <This, Args extends unknown[], R extends PromiseLike<unknown>>(
    method: (this: This, ...args: Args) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => R>,
  ): (this: This, ...args: Args) => R
  /** Legacy (`experimentalDecorators`) method decorator. */
  (target: object, propertyKey: string | symbol, descriptor: PropertyDescriptor): PropertyDescriptor
}

interface MemoInfo {
  readonly fn: Function
  readonly name: string
  /** `[name + '_memver']`, the function's version key, which every call reads; never mutated. */
  readonly versionKeys: readonly string[]
  /** The function's source, appended to the key input when source checking is on. */
  readonly source: string
  readonly isMethod: boolean
  /** A plain function whose result may depend on `this`: its receiver is part of the key. */
  readonly keysThis: boolean
  readonly ignoreThis: boolean
  readonly ignore: ReadonlySet<number>
  readonly digest: DigestFn | undefined
  readonly sourceCheck: boolean | undefined
  readonly options: MemoizeOptions
  readonly policy: Policy
  /**
   * No option that needs the slow path on a hit (`forcedUpdate`, `isStale`,
   * `tags`): a hit on a backend with {@link PEEK} is answered without the
   * getOrSet engine.
   */
  readonly plainHits: boolean
  timeout: number | undefined
  /** The {@link Keying} of the settings last used, then of every other settings object seen. */
  keying: Keying | undefined
  keyings: WeakMap<SlotSettings, Keying> | undefined
  /** The keys of recent one-argument calls, by argument (see {@link recentArg}). */
  recent: Map<unknown, RecentKey> | undefined
}

/** A recent call's key, valid while the keying and versions are the same objects' values. */
interface RecentKey {
  keying: Keying
  versions: string
  key: string
}

/**
 * What a function's keys share under one configuration (hash method,
 * `sourceCheck`): computed once per memoized function and slot settings,
 * not per call.
 */
interface Keying {
  readonly settings: SlotSettings
  /** {@link HASH_CHARS} characters of the hash of the name (and source): the start of every key. */
  readonly prefix: string
  /** The hash of a long argument text, as base64url. */
  readonly hash: (data: string) => string
}

interface BoundInfo {
  readonly info: MemoInfo
  readonly instance: unknown
}

const VERSION_SUFFIX = '_memver'

/**
 * The longest argument text (receiver and arguments, see {@link keyText}) a
 * key holds as it is; a longer one is hashed. Short enough that a key (22 +
 * 6 or 12 + 1 + 128 characters) stays under Memcached's 250 bytes with a
 * namespace of up to 80 bytes; where it does not (a longer namespace,
 * non-ASCII text, spaces), the Memcached, S3 and GCS backends hash the key
 * themselves, so every key is valid on every backend.
 * @internal
 */
export const RAW_KEY_MAX = 128

/**
 * Characters of a base64url digest kept in keys: 22, i.e. 132 bits, beyond
 * the reach of a birthday attack on SHA-256.
 */
const HASH_CHARS = 22

/** After the versions: the argument text follows as it is. */
const RAW_MARK = ':'
/** After the versions: the hash of the argument text follows. */
const HASHED_MARK = '#'

/**
 * A function that stands for a memoized one (NestJS's `@Memoize()` installs
 * such a method before its Cache exists) carries, under this symbol, a
 * function returning the memoized function it forwards to, so that
 * `deleteMemoized` accepts it.
 * @internal
 */
export const MEMOIZED_ALIAS: unique symbol = Symbol('cachette.memoize.alias')

async function isTrue(v: unknown): Promise<boolean> {
  return (isThenable(v) ? await v : v) === true
}

/** The memoize engine behind `cache.memoize`, `deleteMemoized` and `deleteMemoizedVerhash`. */
export class Memoizer {
  readonly #infos = new WeakMap<Function, MemoInfo>()
  readonly #bound = new WeakMap<Function, BoundInfo>()
  /** The function each default (site) name was given to, so that no two functions share one. */
  readonly #sites = new Map<string, WeakRef<Function>>()

  constructor(private readonly slot: () => Slot) {}

  /** Implements both call forms of `cache.memoize`. `publicFn` is hidden from stack traces. */
  memoize(fnOrOptions: unknown, options: unknown, publicFn: Function): unknown {
    if (typeof fnOrOptions === 'function') {
      const opts = checkOptions(options)
      return this.#wrapFunction(fnOrOptions, opts, publicFn)
    }
    const opts = checkOptions(fnOrOptions)
    const memoizer = this
    const decorator = function memoizeDecorator(
      target: unknown,
      context?: unknown,
      descriptor?: unknown,
    ): unknown {
      if (typeof target === 'function' && context === undefined) {
        return memoizer.#wrapFunction(target, opts, memoizeDecorator)
      }
      const { site, file } = callerSite(memoizeDecorator)
      if (typeof target === 'function' && typeof context === 'object' && context !== null) {
        const ctx = context as ClassMethodDecoratorContext
        if (ctx.kind !== 'method') {
          throw new TypeError(`@memoize applies to methods, not to a ${ctx.kind}`)
        }
        return memoizer.#wrap(target, opts, `${site}:${String(ctx.name)}`, true)
      }
      if (typeof descriptor === 'object' && descriptor !== null) {
        const d = descriptor as PropertyDescriptor
        if (typeof d.value !== 'function') throw new TypeError('@memoize applies to methods')
        const owner =
          typeof target === 'function' ? target.name : (target as object).constructor?.name
        // Declared names: the file, class and method, which neither a rebuild nor an edit
        // elsewhere in the file changes. A second, different method of the same name in
        // the file (two classes of one name) is refused, as for plain functions.
        const name = `${file}:${owner}.${String(context)}`
        if (!opts.makeName) memoizer.#claim(name, d.value as Function)
        d.value = memoizer.#wrap(d.value, opts, name, true)
        return d
      }
      throw new TypeError(
        'memoize(options) returns a decorator: apply it to a method or call it with a function',
      )
    }
    return decorator
  }

  /**
   * Memoizes a plain function. Its name is its definition site, shared by every
   * process running the same code; so that no two functions ever share entries:
   *
   * - a function made per instance (in a constructor or a class field, where a
   *   bound function or an arrow stands for its instance) gets a name unique to
   *   the function object, in this process;
   * - a second, different function from the same site (a per-tenant factory, a
   *   request handler, a helper around `cache.memoize`) is refused with a
   *   `TypeError`: it needs a name of its own (`makeName`).
   *
   * `makeName` takes over naming, and with it the responsibility for it.
   */
  #wrapFunction(fn: Function, options: MemoizeOptions, skip: Function): Function {
    const { site, perInstance } = callerSite(skip)
    const siteName = `${site}:${fn.name || 'anonymous'}`
    // #wrap applies makeName.
    if (options.makeName) return this.#wrap(fn, options, siteName, false)
    if (perInstance) return this.#wrap(fn, options, `${siteName}#${objectToken(fn)}`, false)
    this.#claim(siteName, fn)
    return this.#wrap(fn, options, siteName, false)
  }

  /** Gives `name` to `fn` on this Cache; a different function that already has it is a TypeError. */
  #claim(siteName: string, fn: Function): void {
    const first = this.#sites.get(siteName)
    if (first === undefined) this.#sites.set(siteName, new WeakRef(fn))
    else if (first.deref() !== fn) {
      throw new TypeError(
        `memoize: ${siteName} already memoizes a different function on this Cache. Functions ` +
          'created at one place (a factory such as makeLoader(tenant), a request handler, a ' +
          'helper around cache.memoize) get the same name, so they would share results and one ' +
          'caller could receive a result computed for another. Memoize the function once, ' +
          'outside the factory, or pass a name per function: ' +
          "cache.memoize(fn, { makeName: (site) => site + ':' + tenant }).",
      )
    }
  }

  #wrap(fn: Function, options: MemoizeOptions, defaultName: string, isMethod: boolean): Function {
    const names = parameterNames(fn)
    const ignore = new Set<number>()
    let ignoreThis = false
    for (const a of options.argsToIgnore ?? []) {
      if (a === 'this' || a === 'self') ignoreThis = true
      else if (typeof a === 'number' && Number.isInteger(a) && a >= 0) ignore.add(a)
      else {
        const i = names.indexOf(a as string)
        if (i < 0) {
          throw new TypeError(
            `memoize: argsToIgnore names ${JSON.stringify(a)}, but ${fn.name || 'the function'} has parameters (${names.join(', ')})`,
          )
        }
        ignore.add(i)
      }
    }
    const name = options.makeName ? options.makeName(defaultName) : defaultName
    const source = Function.prototype.toString.call(fn)
    const info: MemoInfo = {
      fn,
      name,
      versionKeys: [name + VERSION_SUFFIX],
      source,
      isMethod,
      keysThis: !isMethod && mayUseThis(fn, source),
      ignoreThis,
      ignore,
      digest:
        options.hashMethod === undefined
          ? undefined
          : resolveHashMethod(options.hashMethod, 'hashMethod'),
      sourceCheck: options.sourceCheck,
      options,
      policy: policyOf(options, 'memoize'),
      plainHits:
        options.forcedUpdate === undefined &&
        options.isStale === undefined &&
        options.tags === undefined,
      timeout: parseTimeout(options.timeout, 'memoize timeout'),
      keying: undefined,
      keyings: undefined,
      recent: undefined,
    }
    const memoizer = this
    // Not async itself: #call is, so every call still returns a promise (and never throws),
    // and a hit saves the promise an async wrapper would add around #call's.
    const wrapper = function memoized(this: unknown, ...args: unknown[]): Promise<unknown> {
      return memoizer.#call(info, this, args)
    }
    Object.defineProperty(wrapper, 'name', { value: fn.name, configurable: true })
    Object.defineProperties(wrapper, {
      uncached: { value: fn },
      memoizeName: { value: info.name },
      cacheTimeout: {
        get: () => info.timeout,
        set: (t: Timeout | undefined) => {
          info.timeout = parseTimeout(t, 'cacheTimeout')
        },
      },
      makeCacheKey: {
        value(this: unknown, ...args: unknown[]) {
          return memoizer.#keyFor(info, this, args)
        },
      },
      deleteMemoized: { value: () => memoizer.deleteMemoized(wrapper, []) },
      // obj.method.bind(obj) remembers obj, so deleteMemoized(bound) targets that instance.
      bind: {
        value(thisArg: unknown, ...bindArgs: unknown[]) {
          const bound = Function.prototype.bind.call(wrapper, thisArg, ...bindArgs)
          memoizer.#bound.set(bound, { info, instance: thisArg })
          return bound
        },
      },
    })
    this.#infos.set(wrapper, info)
    return wrapper
  }

  /** The function's {@link Keying} under `slot`'s settings, computed on first use. */
  #keying(info: MemoInfo, slot: Slot): Keying {
    const settings = slot.settings
    const last = info.keying
    if (last !== undefined && last.settings === settings) return last
    let keying = info.keyings?.get(settings)
    if (keying === undefined) {
      const hash = base64urlDigest(info.digest ?? settings.digest)
      // JSON ends at its closing quote, so a name and a name followed by a source never meet.
      const named = JSON.stringify(info.name)
      const input = (info.sourceCheck ?? settings.sourceCheck) ? named + info.source : named
      keying = { settings, prefix: hash(input).slice(0, HASH_CHARS), hash }
    }
    // Several apps with their own settings: each keeps its keying.
    if (last !== undefined) {
      info.keyings ??= new WeakMap()
      info.keyings.set(last.settings, last)
    }
    info.keying = keying
    return keying
  }

  /**
   * The receiver's part of the key: a method's instance (unless `argsToIgnore`
   * has `'this'`), or the `this` of a plain function that may use it; `''` when
   * the receiver is not part of the key. Computed once per call, as it may run
   * the receiver's `cachingId()`.
   */
  #receiverKey(info: MemoInfo, instance: unknown): string {
    if (info.ignoreThis || instance === undefined || instance === null) return ''
    if (info.isMethod) return instanceIdentity(instance)
    // A plain function used as a method: its receiver, as a decorated method's.
    if (info.keysThis && instance !== globalThis) return `this:${instanceIdentity(instance)}`
    return ''
  }

  /** The function's version key, then, for a method on an instance, the instance's. */
  #versionKeys(info: MemoInfo, receiver: string): readonly string[] {
    if (!info.isMethod || receiver === '') return info.versionKeys
    return [info.versionKeys[0] as string, `${info.name}.${receiver}${VERSION_SUFFIX}`]
  }

  /**
   * The receiver and arguments as text (see {@link keyText}). Throws a
   * `TypeError` for an argument that cannot be keyed exactly (see
   * `argumentsKey`), before any backend round trip.
   */
  #keyText(info: MemoInfo, receiver: string, args: readonly unknown[]): string {
    const keyed =
      info.ignore.size === 0 ? args : args.map((a, i) => (info.ignore.has(i) ? undefined : a))
    return keyText(receiver, argumentsKey(keyed))
  }

  async #keyFor(info: MemoInfo, instance: unknown, args: readonly unknown[]): Promise<string> {
    const slot = this.slot()
    const receiver = this.#receiverKey(info, instance)
    const text = this.#keyText(info, receiver, args)
    const backend = slot.backend ?? (await slot.ready)
    const versions = await tokensFor(backend, this.#versionKeys(info, receiver))
    return entryKey(this.#keying(info, slot), versions.join(''), text)
  }

  async #call(info: MemoInfo, self: unknown, args: unknown[]): Promise<unknown> {
    const { fn, options } = info
    if (options.unless && (await isTrue(options.unless(fn as MemoizableFunction, ...args)))) {
      return fn.apply(self, args)
    }
    const slot = this.slot()
    const receiver = this.#receiverKey(info, self)
    // A call whose one argument is a short primitive (f(id)) finds its key among the
    // function's recent keys, so a hit neither rebuilds nor rehashes it. Any other call's
    // text is built now, so that an argument that cannot be keyed throws before any backend
    // call (and is not absorbed below as a backend failure).
    const recent =
      receiver === '' && args.length === 1 && info.ignore.size === 0 && recentArg(args[0])
    const text = recent ? '' : this.#keyText(info, receiver, args)
    let key: string
    let versionKeys: readonly string[]
    let versions: readonly string[]
    let forced: boolean
    let tags: readonly string[]
    try {
      const backend = slot.backend ?? (await slot.ready)
      versionKeys = this.#versionKeys(info, receiver)
      // SimpleCache (unobserved) reads synchronously: a hit needs neither an await for the
      // version nor the getOrSet engine, whose single flight saves nothing on a Map lookup.
      const peek = info.plainHits ? (backend as PeekableBackend)[PEEK] : undefined
      const peeked = peek === undefined ? undefined : peekTokens(peek, backend, versionKeys)
      versions = peeked ?? (await tokensFor(backend, versionKeys))
      const keying = this.#keying(info, slot)
      key = recent
        ? recentKey(info, keying, versions.join(''), args)
        : entryKey(keying, versions.join(''), text)
      if (peek !== undefined) {
        const found = peek.call(backend, key)
        if (found !== undefined && (found !== null || options.cacheNone === true)) {
          // A primitive is immutable; an object is read again through get(), which copies it.
          const value =
            typeof found !== 'object' || found === null
              ? found
              : isEntry(found)
                ? undefined
                : await backend.get(key)
          if (value !== undefined && !isEntry(value)) {
            slot.observer.outcome('memoize', info.name, 'hit')
            return value
          }
        }
      }
      forced = options.forcedUpdate ? await isTrue(options.forcedUpdate(...args)) : false
      tags = resolveTags(options.tags, args, 'memoize')
    } catch (error) {
      if (slot.mustRaise(error)) throw error
      slot.report(`memoize ${info.name}`, error)
      return fn.apply(self, args)
    }
    return getOrCompute(
      slot,
      new MemoizedCall(info, self, args, key, tags, forced, versionKeys, versions),
    )
  }

  #resolve(fn: Function): BoundInfo {
    const alias = (fn as { [MEMOIZED_ALIAS]?: () => Function | undefined })[MEMOIZED_ALIAS]?.()
    if (alias !== undefined && alias !== fn) return this.#resolve(alias)
    const bound = this.#bound.get(fn)
    if (bound !== undefined) return bound
    const info = this.#infos.get(fn)
    if (info === undefined) {
      throw new TypeError(
        `deleteMemoized: ${fn.name || 'this function'} is not a memoized function (pass the function cache.memoize returned)`,
      )
    }
    return { info, instance: undefined }
  }

  /** See `Cache.deleteMemoized`. */
  async deleteMemoized(fn: unknown, args: unknown[]): Promise<void> {
    if (typeof fn !== 'function') {
      throw new TypeError(
        'deleteMemoized: deleting by name is not supported; pass the memoized function',
      )
    }
    const { info, instance } = this.#resolve(fn)
    const slot = this.slot()
    const backend = slot.backend ?? (await slot.ready)
    if (args.length === 0) {
      const keys = this.#versionKeys(info, this.#receiverKey(info, instance))
      // The last version key is the instance's for a bound method, else the function's.
      await backend.set(keys[keys.length - 1] as string, newToken(), 0)
      return
    }
    let self = instance
    let rest = args
    if (info.isMethod && self === undefined && !info.ignoreThis) {
      self = args[0]
      rest = args.slice(1)
      if (typeof self !== 'object' && typeof self !== 'function') {
        throw new TypeError(
          'deleteMemoized on a method: pass the instance first (deleteMemoized(Cls.prototype.method, obj, ...args)) or a bound method',
        )
      }
    }
    const key = await this.#keyFor(info, self, rest)
    await backend.delete(key)
  }

  /** See `Cache.deleteMemoizedVerhash`. */
  async deleteMemoizedVerhash(fn: unknown): Promise<void> {
    if (typeof fn !== 'function') {
      throw new TypeError('deleteMemoizedVerhash: pass the memoized function')
    }
    const { info, instance } = this.#resolve(fn)
    const slot = this.slot()
    const backend = slot.backend ?? (await slot.ready)
    const keys = this.#versionKeys(info, this.#receiverKey(info, instance))
    await backend.deleteMany([keys[keys.length - 1] as string])
  }
}

/**
 * One call of a memoized function, as the getOrSet engine runs it: a class,
 * so a call allocates this one object rather than a closure per hook.
 */
class MemoizedCall implements Computation<unknown> {
  readonly counted = 'memoize'

  constructor(
    readonly info: MemoInfo,
    readonly self: unknown,
    readonly args: unknown[],
    readonly key: string,
    readonly tags: readonly string[],
    readonly forced: boolean,
    readonly versionKeys: readonly string[],
    readonly versions: readonly string[],
  ) {}

  get timeout(): number | undefined {
    return this.info.timeout
  }

  get policy(): Policy {
    return this.info.policy
  }

  get name(): string {
    return this.info.name
  }

  get site(): string {
    return `memoize ${this.info.name}`
  }

  factory(): unknown {
    return this.info.fn.apply(this.self, this.args)
  }

  accept(value: unknown): boolean | Promise<boolean> {
    const o = this.info.options
    if (value === null && o.cacheNone !== true) return false
    if (o.isStale === undefined) return true
    return isTrue(o.isStale(value, ...this.args)).then((stale) => !stale)
  }

  storable(result: unknown): boolean {
    const o = this.info.options
    return (
      (result !== null || o.cacheNone === true) &&
      (!o.responseFilter || Boolean(o.responseFilter(result)))
    )
  }

  async afterStore(backend: CacheBackend, ttl: number | undefined): Promise<void> {
    if (ttl !== 0) await refreshVersions(backend, this.versionKeys, this.versions, ttl)
  }
}

/**
 * The receiver and arguments as one text: the argument text alone (it
 * starts with `(`), or, with a receiver, the receiver's length, `:`, the
 * receiver and the argument text. The length says where the receiver ends,
 * so no receiver and arguments ever read as another receiver and arguments.
 * @internal
 */
export function keyText(receiver: string, args: string): string {
  return receiver === '' ? args : `${receiver.length}:${receiver}${args}`
}

/**
 * An entry's key: the function's prefix ({@link HASH_CHARS} base64url
 * characters), its versions (6 characters each, base64), then `:` and the
 * text ({@link keyText}) when it has at most {@link RAW_KEY_MAX}
 * characters, else `#` and {@link HASH_CHARS} characters of the text's hash.
 * Neither marker is a base64 or base64url character, so the versions end at
 * the marker, and a key used as is can never be a hashed one.
 */
function entryKey(keying: Keying, versions: string, text: string): string {
  return text.length <= RAW_KEY_MAX
    ? keying.prefix + versions + RAW_MARK + text
    : keying.prefix + versions + HASHED_MARK + keying.hash(text).slice(0, HASH_CHARS)
}

/** How many recent keys a memoized function keeps; past it, they are forgotten at once. */
const RECENT_KEYS = 1024
/** The longest string argument whose key is kept among the recent ones. */
const RECENT_STRING_MAX = 64

/**
 * Whether `arg`, as a call's only argument, may key the recent keys: a
 * primitive that a `Map` tells apart exactly as `argumentsKey` does. Not
 * `-0`, which a `Map` takes for `0`; `NaN` is one key for both. Strings up
 * to {@link RECENT_STRING_MAX} characters, so the table stays small.
 */
function recentArg(arg: unknown): boolean {
  switch (typeof arg) {
    case 'number':
      return arg !== 0 || 1 / arg > 0
    case 'string':
      return arg.length <= RECENT_STRING_MAX
    case 'boolean':
    case 'undefined':
      return true
    default:
      return arg === null
  }
}

/**
 * The key of a call with one argument that {@link recentArg} accepts: the
 * recent one when the keying and versions are unchanged, else built (and
 * kept). It equals `entryKey(keying, versions, <the call's text>)`.
 */
function recentKey(
  info: MemoInfo,
  keying: Keying,
  versions: string,
  args: readonly unknown[],
): string {
  const arg = args[0]
  info.recent ??= new Map()
  const recent = info.recent
  const known = recent.get(arg)
  if (known !== undefined && known.keying === keying && known.versions === versions) {
    return known.key
  }
  const key = entryKey(keying, versions, keyText('', argumentsKey(args)))
  if (known !== undefined) {
    known.keying = keying
    known.versions = versions
    known.key = key
  } else {
    if (recent.size >= RECENT_KEYS) recent.clear()
    recent.set(arg, { keying, versions, key })
  }
  return key
}

/**
 * The version tokens at `keys`, read synchronously through {@link PEEK};
 * `undefined` when one is missing (it must be created, see `tokensFor`).
 */
function peekTokens(
  peek: (key: string) => unknown,
  backend: CacheBackend,
  keys: readonly string[],
): string[] | undefined {
  const first = peek.call(backend, keys[0] as string)
  if (typeof first !== 'string') return undefined
  if (keys.length === 1) return [first]
  const tokens = [first]
  for (let i = 1; i < keys.length; i++) {
    const t = peek.call(backend, keys[i] as string)
    if (typeof t !== 'string') return undefined
    tokens.push(t)
  }
  return tokens
}

/**
 * Extends the version keys' lifetime to the new entry's (Flask-Caching #531:
 * a version key that expires first orphans every entry). A version changed
 * meanwhile by `deleteMemoized` is left alone, so it is never resurrected.
 */
async function refreshVersions(
  backend: CacheBackend,
  keys: readonly string[],
  used: readonly string[],
  timeout: number | undefined,
): Promise<void> {
  const now = await backend.getMany(keys)
  const same = keys.map((k, i) => [k, used[i]] as const).filter((_, i) => now[i] === used[i])
  if (same.length > 0) await backend.setMany(same, timeout)
}

/**
 * Whether a plain function's result may depend on the `this` it is called
 * with: not for arrows and bound functions (their `this` is fixed), nor for a
 * function whose source never says `this`, `super` or `eval`. Errs towards
 * yes (a `this` in a comment), which only makes keys narrower.
 */
function mayUseThis(fn: Function, src: string): boolean {
  if (fn.name.startsWith('bound ') && src.includes('[native code]')) return false
  if (!Object.hasOwn(fn, 'prototype') && /^(?:async\s*)?(?:\([^)]*\)|[\w$]+)\s*=>/.test(src))
    return false
  return /\b(?:this|super|eval)\b/.test(src)
}

function checkOptions(options: unknown): MemoizeOptions {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError('memoize options must be an object')
  }
  const known = new Set([
    'timeout',
    'makeName',
    'unless',
    'forcedUpdate',
    'isStale',
    'responseFilter',
    'hashMethod',
    'cacheNone',
    'sourceCheck',
    'argsToIgnore',
    'grace',
    'graceBackoff',
    'tags',
    'lock',
  ])
  for (const k of Object.keys(options)) {
    if (!known.has(k)) throw new TypeError(`memoize: unknown option ${JSON.stringify(k)}`)
  }
  for (const k of ['makeName', 'unless', 'forcedUpdate', 'isStale', 'responseFilter'] as const) {
    const v = (options as Record<string, unknown>)[k]
    if (v !== undefined && typeof v !== 'function')
      throw new TypeError(`memoize: ${k} must be a function`)
  }
  const o = options as MemoizeOptions
  parseTimeout(o.timeout, 'memoize timeout')
  policyOf(o, 'memoize')
  if (typeof o.tags !== 'function') checkTags(o.tags, 'memoize')
  return o
}
