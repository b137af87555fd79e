/**
 * Internal: memcached's binary protocol, the framing only. Requests are
 * encoded in batches into one buffer (one socket write); responses are
 * parsed incrementally from socket chunks without copying a body more than
 * once. See https://github.com/memcached/memcached/wiki/BinaryProtocolRevamped.
 */
import { BackendError } from '../../core/errors.js'

/** Request opcodes cachette sends. */
export const Op = {
  Get: 0x00,
  Set: 0x01,
  Add: 0x02,
  Delete: 0x04,
  Increment: 0x05,
  Flush: 0x08,
  GetQ: 0x09,
  Noop: 0x0a,
  Version: 0x0b,
  GetK: 0x0c,
  Append: 0x0e,
  SetQ: 0x11,
  DeleteQ: 0x14,
  SaslAuth: 0x21,
} as const

/** Response status codes. */
export const Status = {
  Ok: 0x00,
  NotFound: 0x01,
  Exists: 0x02,
  TooLarge: 0x03,
  InvalidArguments: 0x04,
  NotStored: 0x05,
  NonNumeric: 0x06,
  AuthError: 0x20,
  AuthContinue: 0x21,
  UnknownCommand: 0x81,
  OutOfMemory: 0x82,
} as const

const STATUS_TEXT: Record<number, string> = {
  1: 'key not found',
  2: 'key exists',
  3: 'value too large',
  4: 'invalid arguments',
  5: 'item not stored',
  6: 'incr/decr on a non-numeric value',
  7: 'vbucket belongs to another server',
  8: 'authentication error',
  9: 'authentication continue',
  32: 'authentication failed',
  33: 'authentication continue',
  129: 'unknown command',
  130: 'out of memory',
  131: 'not supported',
  132: 'internal error',
  133: 'busy',
  134: 'temporary failure',
}

/** A human-readable status name. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? `status 0x${status.toString(16)}`
}

/** Quiet opcodes: the server answers only on a miss (GetQ: only on a hit) or an error. */
const QUIET = new Set<number>([Op.GetQ, Op.SetQ, Op.DeleteQ])

/** Whether the server may stay silent about a request with this opcode. */
export function isQuiet(opcode: number): boolean {
  return QUIET.has(opcode)
}

/** One request. `extras`, `key` and `value` are optional. */
export interface Request {
  opcode: number
  key?: Buffer
  extras?: Buffer
  value?: Buffer
  cas?: bigint
}

/** One response. `value` is a view into the received bytes (extras and key are skipped). */
export interface Response {
  opcode: number
  status: number
  opaque: number
  cas: bigint
  value: Buffer
}

/** Bytes in a request or response header. */
export const HEADER = 24
const EMPTY = Buffer.alloc(0)

/** Size of a request on the wire. */
export function sizeOf(r: Request): number {
  return HEADER + (r.extras?.length ?? 0) + (r.key?.length ?? 0) + (r.value?.length ?? 0)
}

/** Writes `r` with `opaque` into `out` at `at`; returns the offset after it. */
export function writeRequest(out: Buffer, at: number, r: Request, opaque: number): number {
  const extras = r.extras?.length ?? 0
  const key = r.key?.length ?? 0
  const value = r.value?.length ?? 0
  out[at] = 0x80
  out[at + 1] = r.opcode
  out.writeUInt16BE(key, at + 2)
  out[at + 4] = extras
  out[at + 5] = 0
  out.writeUInt16BE(0, at + 6)
  out.writeUInt32BE(extras + key + value, at + 8)
  out.writeUInt32BE(opaque, at + 12)
  out.writeBigUInt64BE(r.cas ?? 0n, at + 16)
  let p = at + HEADER
  if (r.extras !== undefined) p += r.extras.copy(out, p)
  if (r.key !== undefined) p += r.key.copy(out, p)
  if (r.value !== undefined) p += r.value.copy(out, p)
  return p
}

/** Extras of Set/Add: flags and expiration. */
export function storeExtras(expiration: number, flags = 0): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeUInt32BE(flags, 0)
  b.writeUInt32BE(expiration, 4)
  return b
}

/** Extras of Increment/Decrement: delta, initial value, expiration (`0xffffffff` = fail if missing). */
export function counterExtras(delta: bigint, initial: bigint, expiration: number): Buffer {
  const b = Buffer.allocUnsafe(20)
  b.writeBigUInt64BE(delta, 0)
  b.writeBigUInt64BE(initial, 8)
  b.writeUInt32BE(expiration, 16)
  return b
}

/** A parsed response header, waiting for its body. */
interface Header {
  opcode: number
  status: number
  opaque: number
  cas: bigint
  /** Extras plus key length: where the value starts in the body. */
  skip: number
  body: number
}

function parseHeader(b: Buffer, at: number): Header {
  if (b[at] !== 0x81) {
    throw new BackendError(
      'ERR_CACHETTE_BACKEND_FAILED',
      `memcached protocol error: bad response magic 0x${b[at]?.toString(16)}`,
    )
  }
  return {
    opcode: b[at + 1] as number,
    skip: (b[at + 4] as number) + b.readUInt16BE(at + 2),
    status: b.readUInt16BE(at + 6),
    body: b.readUInt32BE(at + 8),
    opaque: b.readUInt32BE(at + 12),
    cas: b.readBigUInt64BE(at + 16),
  }
}

/**
 * Reassembles responses from socket chunks, reading headers in place. A body
 * that arrives in many chunks is joined once, when complete.
 */
export class ResponseReader {
  #chunks: Buffer[] = []
  /** Read position in the first chunk. */
  #offset = 0
  /** Unread bytes over all chunks. */
  #length = 0
  #header: Header | undefined

  /** Feeds a chunk; calls `onResponse` for every complete response. */
  push(chunk: Buffer, onResponse: (r: Response) => void): void {
    this.#chunks.push(chunk)
    this.#length += chunk.length
    for (;;) {
      let header = this.#header
      if (header === undefined) {
        if (this.#length < HEADER) return
        const first = this.#chunks[0] as Buffer
        if (first.length - this.#offset >= HEADER) {
          header = parseHeader(first, this.#offset)
          this.#skip(HEADER)
        } else {
          header = parseHeader(this.#take(HEADER), 0)
        }
        this.#header = header
      }
      if (this.#length < header.body) return
      const body = header.body === 0 ? EMPTY : this.#take(header.body)
      this.#header = undefined
      onResponse({
        opcode: header.opcode,
        status: header.status,
        opaque: header.opaque,
        cas: header.cas,
        value: header.skip === 0 ? body : body.subarray(header.skip),
      })
    }
  }

  /** Advances past `n` bytes known to be in the first chunk. */
  #skip(n: number): void {
    this.#length -= n
    this.#offset += n
    if (this.#offset === (this.#chunks[0] as Buffer).length) {
      this.#chunks.shift()
      this.#offset = 0
    }
  }

  /** Removes and returns the next `n` buffered bytes. */
  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer
    const available = first.length - this.#offset
    if (available >= n) {
      const out =
        this.#offset === 0 && available === n
          ? first
          : first.subarray(this.#offset, this.#offset + n)
      this.#skip(n)
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.#chunks[0] as Buffer
      const part = Math.min(chunk.length - this.#offset, n - filled)
      chunk.copy(out, filled, this.#offset, this.#offset + part)
      filled += part
      this.#skip(part)
    }
    return out
  }

  /** Drops anything buffered (after the connection is gone). */
  reset(): void {
    this.#chunks = []
    this.#offset = 0
    this.#length = 0
    this.#header = undefined
  }
}
