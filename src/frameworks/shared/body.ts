/**
 * Collecting a response body up to a size limit, the one way every adapter
 * does it: to keep a copy of a body on its way to the client (the view
 * cache stores it), or to hold a body back until it is whole (validation
 * hashes it, the HTTP cache stores it) and send it on as it came when it
 * is larger than the limit.
 */
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream'
import { chunkBuffer } from './node-response.js'

/** What {@link BoundedBody} does with what it collected once the body passes its limit. */
export type Overflow =
  /** Let go of it: a copy of a body that goes out anyway is not stored. */
  | 'drop'
  /** Keep it, the chunk that passed the limit included, in {@link BoundedBody.chunks}: a held-back body the caller sends on. */
  | 'keep'

/** A body collected chunk by chunk, up to `max` bytes. */
export class BoundedBody {
  #chunks: Uint8Array[] | undefined = []
  #size = 0
  #over = false

  /**
   * @param max - the largest body collected, bytes
   * @param overflow - what happens to the chunks collected when the body passes `max`
   */
  constructor(
    readonly max: number,
    private readonly overflow: Overflow = 'drop',
  ) {}

  /**
   * Adds `chunk`: as given, or a copy of it with `copy` (for a buffer its
   * writer may reuse; only what is kept is copied). Returns `false` once the
   * body is larger than `max` (or was discarded): nothing more is collected.
   */
  add(chunk: Uint8Array, copy = false): boolean {
    const chunks = this.#chunks
    if (chunks === undefined || this.#over) return false
    this.#size += chunk.byteLength
    if (this.#size > this.max) {
      this.#over = true
      if (this.overflow === 'keep') chunks.push(copy ? Buffer.from(chunk) : chunk)
      else this.#chunks = undefined
      return false
    }
    chunks.push(copy ? Buffer.from(chunk) : chunk)
    return true
  }

  /** Whether the body passed `max`. */
  get over(): boolean {
    return this.#over
  }

  /** The chunks collected so far, in order (none once dropped or discarded). */
  get chunks(): readonly Uint8Array[] {
    return this.#chunks ?? []
  }

  /** Gives up the body (it failed, or is not bytes): {@link BoundedBody.take} returns `undefined`. */
  discard(): void {
    this.#chunks = undefined
  }

  /** What was collected, as one Buffer (empty once dropped or discarded). */
  bytes(): Buffer {
    const chunks = this.#chunks
    return chunks === undefined ? Buffer.alloc(0) : Buffer.concat(chunks, this.#size)
  }

  /** The whole body as one Buffer, letting go of the chunks; `undefined` when it passed `max` or was discarded. */
  take(): Buffer | undefined {
    const body = this.#chunks === undefined || this.#over ? undefined : this.bytes()
    this.#chunks = undefined
    return body
  }
}

/**
 * Pipes `source` into a pass-through that keeps a copy of every chunk in
 * `body`, and returns the pass-through (the stream to send instead).
 * `ended` is called once the whole body has passed through, `failed` when
 * `source` fails (the body is then discarded).
 */
export function copyingStream(
  source: Readable,
  body: BoundedBody,
  ended: () => void,
  failed: (error: unknown) => void,
): Transform {
  const tee = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      body.add(chunk)
      callback(null, chunk)
    },
    flush(callback: TransformCallback) {
      ended()
      callback()
    },
  })
  pipeline(source, tee, (error) => {
    if (error) {
      body.discard()
      failed(error)
    }
  })
  return tee
}

/** Yields `head`, then the rest of `it`; closes `it` when the consumer stops early. */
async function* resumed(
  head: readonly Uint8Array[],
  it: AsyncIterator<unknown>,
): AsyncGenerator<Uint8Array> {
  let done = false
  try {
    yield* head
    for (;;) {
      const r = await it.next()
      if (r.done) {
        done = true
        return
      }
      yield chunkBuffer(r.value)
    }
  } finally {
    if (!done) await it.return?.()
  }
}

/**
 * Reads `source` to its end, up to `max` bytes. Past `max`, resolves a
 * stream of what was read followed by the rest, to send instead. A stream
 * error rejects.
 */
export async function readUpTo(
  source: Readable,
  max: number,
): Promise<{ body: Buffer } | { rest: Readable }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<unknown>
  const body = new BoundedBody(max, 'keep')
  for (;;) {
    const r = await it.next()
    if (r.done) return { body: body.bytes() }
    if (!body.add(chunkBuffer(r.value))) {
      return { rest: Readable.from(resumed(body.chunks, it), { objectMode: false }) }
    }
  }
}
