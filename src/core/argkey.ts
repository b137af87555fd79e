import { createHash } from 'node:crypto'
import { objectToken, symbolToken } from './identity.js'

/**
 * A deterministic text form of call arguments, used as the input of memoize
 * keys. Two argument lists get the same text only when they are structurally
 * equal; an argument whose full state cannot be seen is refused with a
 * `TypeError` rather than keyed by part of it.
 *
 * - Keyed by value: primitives (`1`, `'1'`, `1n`, `null`, `-0`, `NaN` all
 *   distinct), plain objects (own enumerable string and symbol keys, in any
 *   order; a `null` prototype is distinct), arrays (holes distinct from
 *   `undefined`), `Date` (time), `RegExp` (source, flags, `lastIndex`), `Map`
 *   and `Set` (entries, in any insertion order), `ArrayBuffer`,
 *   `SharedArrayBuffer`, `DataView`, `Buffer` and typed arrays (type and
 *   bytes), `URL` (href), `URLSearchParams` (serialized), `Headers`
 *   (entries) and boxed primitives (type and value).
 * - Keyed by identity (unique to this process): functions and unregistered
 *   symbols; registered symbols by their registry key.
 * - Keyed by `cachingId()` (or `__caching_id__()`), which must return a
 *   string, number or bigint: instances of classes that define it, together
 *   with their class (its name and source, and its ancestors').
 * - Refused: instances of other classes (their state may live in `#private`
 *   fields), objects with non-enumerable own properties, arrays with extra
 *   properties, subclasses of built-ins, `Error`s, promises, weak
 *   collections and every other object whose state is not visible.
 *
 * Extra (expando) properties on typed arrays and buffers are not part of the
 * key: checking for them would cost a walk over every byte index.
 */
export function argumentsKey(args: readonly unknown[]): string {
  let end = args.length
  // f(1) and f(1, undefined) are the same call: defaults apply to both.
  while (end > 0 && args[end - 1] === undefined) end--
  let out = '('
  let i = 0
  try {
    for (; i < end; i++) {
      if (i > 0) out += ','
      out += repr(args[i], undefined)
    }
  } catch (error) {
    if (error instanceof Refused) throw refusal(i, error)
    throw error
  }
  return `${out})`
}

/** Why one nested value cannot be keyed; turned into a `TypeError` naming the argument. */
class Refused extends Error {
  readonly path: string[] = []
}

function refusal(position: number, error: Refused): TypeError {
  const where = error.path.length > 0 ? ` (at ${error.path.join('')})` : ''
  return new TypeError(
    `memoize: argument ${position}${where} ${error.message}, so it cannot be part of a cache key ` +
      'without risking one caller receiving a result computed for another. Give its class a ' +
      '`cachingId()` method returning what identifies it (a primary key), pass a plain value ' +
      `instead (its id), or leave the argument out of the key with \`argsToIgnore: [${position}]\` ` +
      '(with `makeName` if the function should share entries by a name of your choosing).',
  )
}

/** Prefixes the path of a refusal with `segment`; returns the error to rethrow. */
function within(error: unknown, segment: string): unknown {
  if (error instanceof Refused) error.path.unshift(segment)
  return error
}

/**
 * The characters `JSON.stringify` escapes in a string: `"`, `\`, C0 controls
 * and surrogates (lone ones are escaped; pairs only take the slow path).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the C0 controls are what JSON escapes
const ESCAPED = /[\u0000-\u001f"\\\ud800-\udfff]/

/**
 * `JSON.stringify(s)`, exactly: a string without a character it escapes is
 * itself between quotes, which skips the serializer (about half its cost).
 */
function quote(s: string): string {
  return ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`
}

function repr(v: unknown, ancestors: object[] | undefined): string {
  switch (typeof v) {
    case 'string':
      return quote(v)
    case 'number':
      return Object.is(v, -0) ? 'n:-0' : `n:${v}`
    case 'boolean':
      return v ? 'true' : 'false'
    case 'undefined':
      return 'undefined'
    case 'bigint':
      return `big:${v}`
    case 'symbol':
      return `sym:${symbolToken(v)}`
    case 'function':
      return `fn:${objectToken(v)}`
  }
  if (v === null) return 'null'
  const obj = v as object
  const stack = ancestors ?? []
  // A back reference names the ancestor it points to, so two different cycles never collide.
  const depth = stack.indexOf(obj)
  if (depth >= 0) return `cycle:${stack.length - depth}`
  stack.push(obj)
  try {
    return reprObject(obj, stack)
  } finally {
    stack.pop()
  }
}

const TYPED_TAGS = new Map<object, string>([
  [Int8Array.prototype, 'i8'],
  [Uint8Array.prototype, 'u8'],
  [Uint8ClampedArray.prototype, 'u8c'],
  [Int16Array.prototype, 'i16'],
  [Uint16Array.prototype, 'u16'],
  [Int32Array.prototype, 'i32'],
  [Uint32Array.prototype, 'u32'],
  [Float32Array.prototype, 'f32'],
  [Float64Array.prototype, 'f64'],
  [BigInt64Array.prototype, 'i64'],
  [BigUint64Array.prototype, 'u64'],
  [Buffer.prototype, 'buf'],
  [DataView.prototype, 'dv'],
])

function bytes(view: ArrayBufferView | ArrayBufferLike): string {
  const b = ArrayBuffer.isView(view)
    ? Buffer.from(view.buffer, view.byteOffset, view.byteLength)
    : Buffer.from(view)
  return `<${b.toString('base64')}>`
}

function reprObject(obj: object, stack: object[]): string {
  const proto: object | null = Object.getPrototypeOf(obj)
  if (proto === Object.prototype || proto === null) return reprPlain(obj, proto === null, stack)
  if (proto === Array.prototype) return reprArray(obj as unknown[], stack)
  const typed = TYPED_TAGS.get(proto as object)
  if (typed !== undefined) {
    if (Object.getOwnPropertySymbols(obj).length > 0) throw refused(obj, 'has symbol-keyed state')
    return typed + bytes(obj as ArrayBufferView)
  }
  if (proto === ArrayBuffer.prototype || proto === SharedArrayBuffer.prototype) {
    noOwnState(obj)
    return (proto === ArrayBuffer.prototype ? 'ab' : 'sab') + bytes(obj as ArrayBufferLike)
  }
  if (proto === Date.prototype) {
    noOwnState(obj)
    return `date:${(obj as Date).getTime()}`
  }
  if (proto === RegExp.prototype) {
    const re = obj as RegExp
    // lastIndex is the one own property of a RegExp (writable, not enumerable).
    if (Reflect.ownKeys(re).length !== 1) throw refused(obj, 'has properties of its own')
    return `re:${JSON.stringify(re.source)}/${re.flags}@${re.lastIndex}`
  }
  if (proto === Map.prototype) {
    noOwnState(obj)
    const entry = ([k, val]: [unknown, unknown]) => `${repr(k, stack)}=>${repr(val, stack)}`
    return `map{${sortedItems(obj as Map<unknown, unknown>, '.entries()', entry)}}`
  }
  if (proto === Set.prototype) {
    noOwnState(obj)
    return `set{${sortedItems(obj as Set<unknown>, '.values()', (x) => repr(x, stack))}}`
  }
  if (proto === URL.prototype) {
    noOwnState(obj)
    return `url:${JSON.stringify((obj as URL).href)}`
  }
  if (proto === URLSearchParams.prototype) {
    noOwnState(obj)
    return `usp:${JSON.stringify(String(obj))}`
  }
  if (typeof Headers === 'function' && proto === Headers.prototype) {
    noOwnState(obj)
    return `headers:${JSON.stringify([...(obj as Headers)])}`
  }
  const boxed = reprBoxed(obj, proto as object)
  if (boxed !== undefined) return boxed
  const custom = obj as { cachingId?: unknown; __caching_id__?: unknown }
  const idOf = typeof custom.cachingId === 'function' ? custom.cachingId : custom.__caching_id__
  if (typeof idOf === 'function') {
    const id: unknown = idOf.call(obj)
    if (typeof id !== 'string' && typeof id !== 'number' && typeof id !== 'bigint') {
      throw refused(obj, `has a cachingId() that returned a ${id === null ? 'null' : typeof id}`)
    }
    return `inst:${classIdentity(obj, proto as object)}(${repr(id, stack)})`
  }
  if (obj instanceof Error) throw refused(obj, 'is an Error')
  throw refused(
    obj,
    'has no cachingId() and its state may live where cachette cannot see it (#private or non-enumerable fields, closures)',
  )
}

/**
 * The entries of a Map or Set, each keyed by `each`, sorted so that insertion
 * order does not matter; a refusal names the entry at `segment[i]`.
 */
function sortedItems<T>(entries: Iterable<T>, segment: string, each: (entry: T) => string): string {
  const items: string[] = []
  let i = 0
  for (const entry of entries) {
    try {
      items.push(each(entry))
    } catch (error) {
      throw within(error, `${segment}[${i}]`)
    }
    i++
  }
  return items.sort().join(',')
}

function reprBoxed(obj: object, proto: object): string | undefined {
  let value: unknown
  if (proto === Number.prototype) value = Number.prototype.valueOf.call(obj)
  else if (proto === Boolean.prototype) value = Boolean.prototype.valueOf.call(obj)
  else if (proto === BigInt.prototype) value = BigInt.prototype.valueOf.call(obj)
  else if (proto === Symbol.prototype) value = Symbol.prototype.valueOf.call(obj)
  else if (proto === String.prototype) {
    const s = String.prototype.valueOf.call(obj)
    // A String object's own properties are its indices and length.
    if (Reflect.ownKeys(obj).length !== s.length + 1)
      throw refused(obj, 'has properties of its own')
    return `box(${JSON.stringify(s)})`
  } else return undefined
  noOwnState(obj)
  return `box(${repr(value, undefined)})`
}

function noOwnState(obj: object): void {
  if (Reflect.ownKeys(obj).length > 0) throw refused(obj, 'has properties of its own')
}

function describe(obj: object): string {
  const ctor = (Object.getPrototypeOf(obj) as { constructor?: unknown } | null)?.constructor
  const name = typeof ctor === 'function' && ctor.name ? ctor.name : 'Object'
  return `is ${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}, which`
}

function refused(obj: object, why: string): Refused {
  return new Refused(`${describe(obj)} ${why}`)
}

function reprPlain(obj: object, nullProto: boolean, stack: object[]): string {
  const keys = Object.keys(obj)
  const symbols = Object.getOwnPropertySymbols(obj)
  const names = Object.getOwnPropertyNames(obj)
  if (names.length !== keys.length) {
    const hidden = names.find((k) => !keys.includes(k))
    throw new Refused(
      `is an object with a non-enumerable property ${hidden}, which is hidden state`,
    )
  }
  keys.sort()
  let out = nullProto ? 'null{' : '{'
  let k: string | symbol = ''
  try {
    for (let i = 0; i < keys.length; i++) {
      k = keys[i] as string
      if (i > 0) out += ','
      out += `${quote(k)}:${repr((obj as Record<string, unknown>)[k], stack)}`
    }
    if (symbols.length > 0) {
      const items: string[] = []
      for (const sym of symbols) {
        k = sym
        if (!Object.prototype.propertyIsEnumerable.call(obj, sym)) {
          throw new Refused(
            `is an object with a non-enumerable property ${String(sym)}, which is hidden state`,
          )
        }
        items.push(`[${symbolToken(sym)}]:${repr((obj as Record<symbol, unknown>)[sym], stack)}`)
      }
      out += (keys.length > 0 ? ',' : '') + items.sort().join(',')
    }
  } catch (error) {
    throw within(error, typeof k === 'string' ? `.${k}` : `[${String(k)}]`)
  }
  return `${out}}`
}

function reprArray(arr: unknown[], stack: object[]): string {
  let out = '['
  let present = 0
  let i = 0
  try {
    for (; i < arr.length; i++) {
      if (i > 0) out += ','
      if (i in arr) {
        present++
        out += repr(arr[i], stack)
      } else out += 'hole'
    }
  } catch (error) {
    throw within(error, `[${i}]`)
  }
  // Own keys: the present indices plus length; anything else is state the key would miss.
  if (Reflect.ownKeys(arr).length !== present + 1) {
    throw new Refused('is an array with properties besides its elements')
  }
  return `${out}]`
}

/** Each class's identity by its prototype; `null` for a class refused as a duplicate. */
const classIds = new WeakMap<object, string | null>()
const seenClassIds = new Set<string>()

/**
 * A class's identity, the same in every process running the same code: the
 * names and source text of the class and its ancestors. Two different
 * classes with the same name differ; two distinct class objects with the
 * same name and source (a class made by a factory, a module loaded twice)
 * are refused, since their instances could not be told apart. Either way the
 * source is hashed once per class.
 */
function classIdentity(obj: object, proto: object): string {
  let id = classIds.get(proto)
  if (id === undefined) {
    id = hashClass(proto)
    if (seenClassIds.has(id)) id = null
    else seenClassIds.add(id)
    classIds.set(proto, id)
  }
  if (id === null) {
    throw refused(
      obj,
      'is an instance of a class with the same name and source as another class already seen in this process (a class made by a factory, or a module loaded twice), so their cachingId() values could collide',
    )
  }
  return id
}

function hashClass(proto: object): string {
  const hash = createHash('sha256')
  for (let p: object | null = proto; p !== null && p !== Object.prototype; ) {
    const ctor = (p as { constructor?: unknown }).constructor
    hash.update(
      typeof ctor === 'function'
        ? `${ctor.name}\0${Function.prototype.toString.call(ctor)}\0`
        : '?\0',
    )
    p = Object.getPrototypeOf(p) as object | null
  }
  const ctor = (proto as { constructor?: unknown }).constructor
  const name = typeof ctor === 'function' ? ctor.name : ''
  return `${JSON.stringify(name)}#${hash.digest('base64').slice(0, 12)}`
}
