import { CorruptEntryError, UnserializableValueError } from './errors.js'
import { type Logger, warnOnce } from './log.js'
import type { Serializer } from './serializers.js'

/**
 * The byte format shared by every backend that stores bytes (filesystem, Redis,
 * Memcached, S3, GCS), after Flask-Caching's Redis format:
 * a safe integer is stored as its ASCII decimal digits (so Redis `INCRBY` and
 * Memcached `incr` work on it; a decimal beyond the safe range, written by
 * another program, decodes to an exact `bigint`; other numbers, such as
 * `2 ** 53 + 2` or `1e300`, go through the serializer), a string as `"`
 * followed by its UTF-8 bytes (no serializer round trip for the most common
 * value, and readable in `redis-cli`), anything else as `!` followed by the
 * serializer's bytes.
 */
const BANG = 0x21
const QUOTE = 0x22

/** Encodes a value for a byte-oriented backend. Throws a TypeError for values that cannot be stored. */
export function encodeValue(value: unknown, serializer: Serializer): Buffer {
  if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) {
    return Buffer.from(String(value), 'latin1')
  }
  if (typeof value === 'string') {
    const out = Buffer.allocUnsafe(Buffer.byteLength(value) + 1)
    out[0] = QUOTE
    out.write(value, 1)
    return out
  }
  if (value === undefined) {
    throw new UnserializableValueError(
      'cannot store undefined: undefined means a miss; store null instead',
    )
  }
  const body = serializer.dumps(value)
  const out = Buffer.allocUnsafe(body.length + 1)
  out[0] = BANG
  out.set(body, 1)
  return out
}

const DECIMAL = /^-?\d+$/

/** Decodes what {@link encodeValue} wrote. Throws {@link CorruptEntryError} for bytes it cannot read. */
export function decodeValue(data: Uint8Array, serializer: Serializer): unknown {
  if (data.length === 0) throw new CorruptEntryError('empty entry')
  if (data[0] === QUOTE) {
    // A Buffer decodes in place; other views get a Buffer over the same memory.
    return Buffer.isBuffer(data)
      ? data.toString('utf8', 1)
      : Buffer.from(data.buffer, data.byteOffset + 1, data.byteLength - 1).toString('utf8')
  }
  if (data[0] === BANG) {
    try {
      return serializer.loads(data.subarray(1))
    } catch (error) {
      throw new CorruptEntryError(`cannot decode entry: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1')
  if (DECIMAL.test(text)) return decimalValue(text)
  throw new CorruptEntryError('entry is neither an integer nor a serialized value')
}

/**
 * The value of a stored decimal (what `INCRBY`/`incr` or another program
 * wrote): a number when it is a safe integer, else an exact `bigint` (a
 * 400-digit decimal never reads as `Infinity`, `9007199254740993` never as
 * `9007199254740992`). cachette itself writes only safe integers as decimals.
 */
function decimalValue(text: string): number | bigint {
  const n = Number(text)
  if (Number.isSafeInteger(n)) return n === 0 ? 0 : n
  return BigInt(text)
}

/**
 * {@link decodeValue} for a read: an entry that cannot be decoded (written by
 * another program, or with another serializer) is a miss, warned about once
 * per logger and `code`, naming the backend and the key.
 */
export function decodeOrMiss(
  data: Uint8Array,
  serializer: Serializer,
  where: { logger: Logger; code: string; backend: string; key: string },
): unknown {
  try {
    return decodeValue(data, serializer)
  } catch (error) {
    if (!(error instanceof CorruptEntryError)) throw error
    warnOnce(
      where.logger,
      where.code,
      `${where.backend}: an entry could not be decoded and reads as a miss (${error.message}): ${JSON.stringify(where.key)}`,
    )
    return undefined
  }
}
