/**
 * What ClusterCache sends over a cluster's IPC channel. Node's default channel
 * encoding is JSON, so a value travels as a JSON-safe *wire value*: strings,
 * booleans and finite numbers as they are (the common case costs nothing),
 * `null` as `{ n: 1 }` (JSON `null` means a miss in replies), and anything else
 * as the serializer's bytes in base64 (`{ b: '...' }`). The primary stores wire
 * values without decoding them, so it never runs the serializer, and a value
 * set by one worker is read back byte for byte by another.
 *
 * A worker batches what it asks within one tick into one message:
 * `{ cachette: 'cluster', q: [[id, op, store, ...args], ...] }`; the primary
 * answers each batch with one message: `{ cachette: 'cluster', r: [[id, 1,
 * result] | [id, 0, [errorName, message]], ...] }`.
 * @internal
 */
import { BACKEND_OPERATIONS, type BackendOperation } from '../../core/backend.js'
import { UnserializableValueError } from '../../core/errors.js'
import type { Serializer } from '../../core/serializers.js'

/** The `cachette` field of every ClusterCache message; other messages are left alone. */
export const MARK = 'cluster'

/** A value as it travels and as the primary stores it. */
export type Wire = string | number | boolean | WireNull | WireBytes
/** `null`. */
export interface WireNull {
  readonly n: 1
}
/** A serialized value, base64. */
export interface WireBytes {
  readonly b: string
}

/**
 * The backend operations a worker sends to the primary: every one of
 * `BACKEND_OPERATIONS` but `unlink`, which ClusterCache does not offer
 * (its `deleteMany` is one message already).
 */
type SentOperation = Exclude<BackendOperation, 'unlink'>

/** The name of a message operation: opening a store, a backend operation, key listing, stats. */
export type OpName = 'open' | SentOperation | 'keys' | 'stats'

/** The operations by number (each one's number is its index here), for error messages. */
export const OP_NAMES: readonly OpName[] = Object.freeze([
  'open',
  ...BACKEND_OPERATIONS.filter((op): op is SentOperation => op !== 'unlink'),
  'keys',
  'stats',
])

/** The operations, as small integers (they are in every request), named after the backend methods. */
export const Op: { readonly [name in OpName]: number } = Object.freeze(
  Object.fromEntries(OP_NAMES.map((name, i) => [name, i])) as { [name in OpName]: number },
)
/** An operation's number. */
export type Op = number

/** One request: id, operation, store name, then the operation's arguments. */
export type Request = [id: number, op: Op, store: string, ...args: unknown[]]
/** One answer: `[id, 1, result]`, or `[id, 0, [errorName, message]]`. */
export type Reply =
  | [id: number, ok: 1, result: unknown]
  | [id: number, ok: 0, error: [string, string]]

/** A batch of requests (worker → primary). */
export interface RequestMessage {
  readonly cachette: typeof MARK
  readonly q: Request[]
}
/** A batch of answers (primary → worker). */
export interface ReplyMessage {
  readonly cachette: typeof MARK
  readonly r: Reply[]
}

const NULL: WireNull = Object.freeze({ n: 1 })

/** Encodes a value for the wire; an unstorable one is a TypeError, as on every backend. */
export function toWire(value: unknown, serializer: Serializer): Wire {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      // JSON turns NaN and ±Infinity into null and -0 into 0: those take the serializer.
      if (Number.isFinite(value) && !Object.is(value, -0)) return value
      break
    case 'undefined':
      throw new UnserializableValueError(
        'cannot store undefined: undefined means a miss; store null instead',
      )
  }
  if (value === null) return NULL
  const bytes = serializer.dumps(value)
  return { b: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') }
}

/** Decodes a wire value; `null` (a miss in a reply) becomes `undefined`. */
export function fromWire(wire: unknown, serializer: Serializer): unknown {
  if (wire === null || wire === undefined) return undefined
  if (typeof wire !== 'object') return wire
  const bytes = (wire as Partial<WireBytes>).b
  if (bytes === undefined) return null
  return serializer.loads(Buffer.from(bytes, 'base64'))
}

/** Whether a message is one of ours. */
export function isMessage(message: unknown): message is { cachette: typeof MARK } {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { cachette?: unknown }).cachette === MARK
  )
}
