import { instanceIdentity, objectToken, symbolToken } from './identity.js'

/**
 * A deterministic text form of call arguments, used as the input of memoize
 * keys. Equal values give equal text regardless of object key order or Set/Map
 * insertion order; values of different types never collide (`1` vs `'1'`,
 * `0` vs `null` vs missing). Plain objects, arrays, Date, RegExp, Map, Set,
 * Buffer/TypedArrays and BigInt are keyed by value; functions and
 * unregistered symbols by identity; class instances by `cachingId()` when
 * they define it, else by constructor name and own enumerable properties.
 */
export function argumentsKey(args: readonly unknown[]): string {
  let end = args.length
  // f(1) and f(1, undefined) are the same call: defaults apply to both.
  while (end > 0 && args[end - 1] === undefined) end--
  let out = '('
  for (let i = 0; i < end; i++) {
    if (i > 0) out += ','
    out += repr(args[i], undefined)
  }
  return `${out})`
}

function repr(v: unknown, seen: Set<object> | undefined): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
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
  if (seen?.has(obj)) return 'cycle'
  const s = seen ?? new Set<object>()
  s.add(obj)
  try {
    return reprObject(obj, s)
  } finally {
    s.delete(obj)
  }
}

function reprObject(obj: object, seen: Set<object>): string {
  if (Array.isArray(obj)) return `[${obj.map((x) => repr(x, seen)).join(',')}]`
  if (obj instanceof Date) return `date:${obj.getTime()}`
  if (obj instanceof RegExp) return `re:${String(obj)}`
  if (ArrayBuffer.isView(obj)) {
    const bytes = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength)
    return `${obj.constructor.name}:${bytes.toString('base64')}`
  }
  if (obj instanceof Map) {
    const items = [...obj].map(([k, val]) => `${repr(k, seen)}=>${repr(val, seen)}`).sort()
    return `map{${items.join(',')}}`
  }
  if (obj instanceof Set)
    return `set{${[...obj]
      .map((x) => repr(x, seen))
      .sort()
      .join(',')}}`
  const proto = Object.getPrototypeOf(obj)
  const plain = proto === Object.prototype || proto === null
  if (!plain) {
    const custom = obj as { cachingId?: unknown; __caching_id__?: unknown }
    if (typeof custom.cachingId === 'function' || typeof custom.__caching_id__ === 'function') {
      return `inst:${instanceIdentity(obj)}`
    }
  }
  const keys = Object.keys(obj).sort()
  const body = keys.map(
    (k) => `${JSON.stringify(k)}:${repr((obj as Record<string, unknown>)[k], seen)}`,
  )
  const tag = plain ? '' : (proto?.constructor?.name ?? 'Object')
  return `${tag}{${body.join(',')}}`
}
