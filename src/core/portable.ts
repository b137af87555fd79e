/**
 * A serializer written in plain JavaScript, for runtimes without `node:v8`
 * (Cloudflare's workerd): tagged JSON that round-trips the types cachette
 * promises (strings, numbers including NaN, ±Infinity and -0, booleans, null,
 * arrays, plain objects, Date, Map, Set, RegExp, Error, Buffer, Uint8Array
 * and the other typed arrays, ArrayBuffer, BigInt). Like the v8 format it
 * cannot run code when read; unlike it, cycles and shared references are
 * refused (a TypeError), class instances come back as plain objects, and the
 * bytes are larger and slower to make.
 */
import { UnserializableValueError } from './errors.js'

type Tagged = { $: string; v?: unknown; t?: string; f?: string; n?: string }

const TYPED: Record<string, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
}

function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(binary)
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

const NodeBuffer = (
  globalThis as {
    Buffer?: {
      isBuffer(v: unknown): boolean
      from(b: ArrayBufferLike, o: number, l: number): unknown
    }
  }
).Buffer

function encode(value: unknown, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value
      return { $: 'n', v: Object.is(value, -0) ? '-0' : String(value) }
    case 'bigint':
      return { $: 'b', v: value.toString() }
    case 'undefined':
      return { $: 'u' }
    case 'function':
    case 'symbol':
      throw new UnserializableValueError(`cannot store a ${typeof value}`)
  }
  if (value === null) return null
  const obj = value as object
  if (seen.has(obj)) {
    throw new UnserializableValueError(
      'cannot store a circular structure with the portable serializer',
    )
  }
  seen.add(obj)
  try {
    if (Array.isArray(obj)) return Array.from(obj, (item) => encode(item, seen))
    if (obj instanceof Date) return { $: 'd', v: obj.getTime() }
    if (obj instanceof Map) {
      return { $: 'm', v: [...obj].map(([k, v]) => [encode(k, seen), encode(v, seen)]) }
    }
    if (obj instanceof Set) return { $: 's', v: [...obj].map((item) => encode(item, seen)) }
    if (obj instanceof RegExp) return { $: 'r', v: obj.source, f: obj.flags }
    if (obj instanceof Error) return { $: 'e', n: obj.name, v: obj.message }
    if (obj instanceof ArrayBuffer) return { $: 'ab', v: toBase64(new Uint8Array(obj)) }
    if (ArrayBuffer.isView(obj)) {
      const bytes = new Uint8Array(obj.buffer, obj.byteOffset, obj.byteLength)
      if (NodeBuffer?.isBuffer(obj)) return { $: 'B', v: toBase64(bytes) }
      if (obj instanceof Uint8Array) return { $: 'u8', v: toBase64(bytes) }
      return { $: 'ta', t: obj.constructor.name, v: toBase64(bytes) }
    }
    const out: Record<string, unknown> = {}
    let tagged = false
    for (const [k, v] of Object.entries(obj)) {
      if (k === '$') tagged = true
      out[k] = encode(v, seen)
    }
    return tagged ? { $: 'o', v: out } : out
  } finally {
    seen.delete(obj)
  }
}

function decode(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(decode)
  const t = value as Tagged
  if (typeof t.$ !== 'string') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = decode(v)
    return out
  }
  switch (t.$) {
    case 'n':
      return t.v === '-0' ? -0 : Number(t.v)
    case 'b':
      return BigInt(t.v as string)
    case 'u':
      return undefined
    case 'd':
      return new Date(t.v as number)
    case 'm':
      return new Map((t.v as [unknown, unknown][]).map(([k, v]) => [decode(k), decode(v)]))
    case 's':
      return new Set((t.v as unknown[]).map(decode))
    case 'r':
      return new RegExp(t.v as string, t.f)
    case 'e': {
      const error = new Error(t.v as string)
      if (t.n !== undefined) error.name = t.n
      return error
    }
    case 'ab':
      return fromBase64(t.v as string).buffer
    case 'B': {
      const bytes = fromBase64(t.v as string)
      return NodeBuffer ? NodeBuffer.from(bytes.buffer, 0, bytes.length) : bytes
    }
    case 'u8':
      return fromBase64(t.v as string)
    case 'ta': {
      const Ctor = TYPED[t.t as string]
      if (Ctor === undefined) throw new TypeError(`unknown typed array ${String(t.t)}`)
      return new Ctor(fromBase64(t.v as string).buffer as ArrayBuffer)
    }
    case 'o': {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(t.v as object)) out[k] = decode(v)
      return out
    }
    default:
      throw new TypeError(`unknown portable tag ${JSON.stringify(t.$)}`)
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Tagged JSON that round-trips every type the backend contract promises, in
 * any runtime (see the module comment). A `Serializer` (declared here in
 * full, so that this module and serializers.ts do not import each other). The default of CloudflareKVCache,
 * and what the default serializer falls back to where `node:v8` is missing.
 */
export const portableSerializer: {
  /** `'portable'`. */
  readonly name: string
  /** Encodes a value; a TypeError for one it cannot represent (a function, a cycle). */
  dumps(value: unknown): Uint8Array
  /** Decodes what `dumps` produced. */
  loads(data: Uint8Array): unknown
} = {
  name: 'portable',
  dumps(value) {
    if (value === undefined) {
      throw new UnserializableValueError(
        'cannot store undefined: undefined means a miss; store null instead',
      )
    }
    return encoder.encode(JSON.stringify(encode(value, new Set())))
  },
  loads(data) {
    return decode(JSON.parse(decoder.decode(data)))
  },
}
