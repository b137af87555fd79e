import { UnserializableValueError } from './errors.js'

/** Marks a value the fast clone does not handle; the caller falls back to the serializer. */
const FALLBACK: unique symbol = Symbol('cachette.clone.fallback')

/**
 * A deep copy of plain data, equal to what a V8 serializer round trip gives
 * but without encoding: plain objects, arrays, Date, Map, Set, RegExp, Buffer
 * and TypedArrays, BigInt and primitives, with shared and circular references
 * kept. Returns `undefined` when `value` holds anything else (class
 * instances, Errors, sparse arrays, ...): the caller then uses the
 * serializer, which defines the result for those. Functions and symbols throw
 * the same TypeError the serializer would.
 */
export function clonePlain(value: unknown): { value: unknown } | undefined {
  const out = copy(value, undefined)
  return out === FALLBACK ? undefined : { value: out }
}

function reject(what: string): never {
  throw new UnserializableValueError(`cannot store ${what}: it could not be cloned`)
}

function copy(v: unknown, seen: Map<object, unknown> | undefined): unknown {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return v
    case 'function':
      return reject(`a function (${v.name || 'anonymous'})`)
    case 'symbol':
      return reject('a symbol')
  }
  if (v === null) return null
  const obj = v as object
  const known = seen?.get(obj)
  if (known !== undefined) return known
  const s = seen ?? new Map<object, unknown>()
  if (Array.isArray(obj)) {
    if (Object.getPrototypeOf(obj) !== Array.prototype) return FALLBACK
    const out = new Array<unknown>(obj.length)
    s.set(obj, out)
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) return FALLBACK
      const c = copy(obj[i], s)
      if (c === FALLBACK) return FALLBACK
      out[i] = c
    }
    return out
  }
  const proto = Object.getPrototypeOf(obj)
  if (proto === Object.prototype || proto === null) {
    // Like V8's serializer, a null-prototype object comes back as an ordinary one.
    const out: Record<string, unknown> = {}
    s.set(obj, out)
    for (const key of Object.keys(obj)) {
      const c = copy((obj as Record<string, unknown>)[key], s)
      if (c === FALLBACK) return FALLBACK
      out[key] = c
    }
    return out
  }
  if (proto === Date.prototype) return new Date((obj as Date).getTime())
  if (Buffer.isBuffer(obj)) {
    if (proto !== Buffer.prototype) return FALLBACK
    const out = Buffer.allocUnsafe(obj.length)
    obj.copy(out)
    s.set(obj, out)
    return out
  }
  if (ArrayBuffer.isView(obj)) {
    if (proto === DataView.prototype || obj.constructor?.prototype !== proto) return FALLBACK
    const out = (obj as Uint8Array).slice()
    s.set(obj, out)
    return out
  }
  if (proto === Map.prototype) {
    const out = new Map<unknown, unknown>()
    s.set(obj, out)
    for (const [k, val] of obj as Map<unknown, unknown>) {
      const ck = copy(k, s)
      const cv = copy(val, s)
      if (ck === FALLBACK || cv === FALLBACK) return FALLBACK
      out.set(ck, cv)
    }
    return out
  }
  if (proto === Set.prototype) {
    const out = new Set<unknown>()
    s.set(obj, out)
    for (const item of obj as Set<unknown>) {
      const c = copy(item, s)
      if (c === FALLBACK) return FALLBACK
      out.add(c)
    }
    return out
  }
  if (proto === RegExp.prototype) {
    const r = obj as RegExp
    return new RegExp(r.source, r.flags)
  }
  return FALLBACK
}
