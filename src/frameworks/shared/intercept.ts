/**
 * Changing a `node:http` response before it goes out, for the HTTP caching
 * of the adapters on `node:http` (Express/Connect, Fastify, Koa):
 *
 * - the queue of header modifiers (`cacheFor`, `vary`, ...) a response's
 *   routes queued, applied once, when the response is captured or its
 *   headers are written;
 * - holding back a response until it is complete, so that it can be changed
 *   (a 304 instead of a 200, an ETag added, a stored response sent instead
 *   of the origin's 304) before anything reaches the client. A body larger
 *   than the limit is not held: what was held is sent as it was, and the
 *   rest streams through unchanged.
 */
import type { ServerResponse } from 'node:http'
import { groupHeaders } from '../../core/headers.js'
import type { HeaderModifier } from '../../http/directives.js'
import { BoundedBody } from './body.js'
import { currentHeaders, type HeaderPairs, headersWith, toBuffer } from './node-response.js'

/** Where a response keeps the header modifiers (`cacheFor`, `vary`, ...) its routes queued. */
const HEADER_MODIFIERS = Symbol.for('cachette.http.modifiers')

type ModifiedResponse = ServerResponse & { [HEADER_MODIFIERS]?: HeaderModifier[] }

/** Replaces every header of `res` with `headers`. */
function replaceHeaders(res: ServerResponse, headers: HeaderPairs): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  for (const [name, value] of groupHeaders(headers)) res.setHeader(name, value)
}

/**
 * Queues a header modifier for this response. The queue is applied once,
 * in the order queued (outermost first, so the innermost wins): by whoever
 * captures the response first ({@link applyQueuedModifiers}: a held
 * response, Fastify's `onSend`, Koa's helpers), else when its headers are
 * written (the first modifier wraps `res.writeHead`).
 */
export function queueModifier(res: ServerResponse, modifier: HeaderModifier): void {
  const r = res as ModifiedResponse
  let list = r[HEADER_MODIFIERS]
  if (list === undefined) {
    list = []
    r[HEADER_MODIFIERS] = list
    const writeHead = res.writeHead
    res.writeHead = function modifiedWriteHead(this: ServerResponse, ...args: unknown[]) {
      const call = writeHead as (...a: unknown[]) => ServerResponse
      const pending = (this as ModifiedResponse)[HEADER_MODIFIERS]
      if (pending === undefined || pending.length === 0) return call.apply(this, args)
      const message = typeof args[1] === 'string' ? args[1] : undefined
      const headers = headersWith(this, message === undefined ? args[1] : args[2])
      applyQueuedModifiers(this, headers)
      replaceHeaders(this, headers)
      return message === undefined ? call.call(this, args[0]) : call.call(this, args[0], message)
    } as ServerResponse['writeHead']
  }
  list.push(modifier)
}

/**
 * Applies the modifiers queued on `res` and not applied yet to `headers`,
 * in queue order, so that each applies once however many layers capture
 * the response. Returns whether any was applied.
 */
export function applyQueuedModifiers(res: ServerResponse, headers: HeaderPairs): boolean {
  const list = (res as ModifiedResponse)[HEADER_MODIFIERS]
  if (list === undefined || list.length === 0) return false
  const now = Date.now()
  for (const modifier of list.splice(0)) modifier(headers, now)
  return true
}

/** {@link applyQueuedModifiers} on the headers set on `res` so far. */
export function applyQueuedModifiersToResponse(res: ServerResponse): void {
  const headers = currentHeaders(res)
  if (applyQueuedModifiers(res, headers)) replaceHeaders(res, headers)
}

/** Drops the modifiers queued on `res` (an error answers instead of the route: they do not apply). */
export function discardQueuedModifiers(res: ServerResponse): void {
  ;(res as ModifiedResponse)[HEADER_MODIFIERS]?.splice(0)
}

/** A complete response held back. */
export interface HeldResponse {
  status: number
  headers: HeaderPairs
  body: Buffer
  /**
   * Whether the response failed while held: its status or headers were
   * changed after its first body chunk (when Node would have sent the head
   * already, so only an error handler answering over a started response
   * does that), or a stream piped into it failed. Such a response is
   * sent as it came and never stored.
   */
  failed?: boolean
}

/**
 * Intercepts `res`. When the route ends its response, `decide` gets it and
 * returns what to send instead (or the same). If the body passes `maxBytes`,
 * the response streams through unchanged and `decide` is not called;
 * `onStreamed` is then called instead.
 */
export function holdResponse(
  res: ServerResponse,
  maxBytes: number,
  decide: (
    held: HeldResponse,
  ) => Promise<HeldResponse | { status: number; headers: HeaderPairs; body: Buffer | undefined }>,
  onStreamed?: () => void,
): void {
  const orig = { writeHead: res.writeHead, write: res.write, end: res.end }
  let status: number | undefined
  let headers: HeaderPairs | undefined
  const body = new BoundedBody(maxBytes, 'keep')
  let streaming = false
  /** The status and headers as they were at the first body chunk (Node sends the head then). */
  let committed: string | undefined
  let failed = false
  const signature = () => `${res.statusCode}\u0000${JSON.stringify(currentHeaders(res))}`
  res.on('pipe', (source: NodeJS.ReadableStream) => {
    // First in line, so it counts even when the app's own listener ends the response.
    source.prependOnceListener('error', () => {
      failed = true
    })
  })

  const restore = () => {
    res.writeHead = orig.writeHead
    res.write = orig.write
    res.end = orig.end
  }
  const snapshot = () => {
    if (headers === undefined) {
      status = res.statusCode
      headers = currentHeaders(res)
    }
    applyQueuedModifiers(res, headers)
  }
  const startStreaming = () => {
    streaming = true
    restore()
    snapshot()
    send(res, status as number, headers as HeaderPairs)
    for (const c of body.chunks) res.write(c)
    body.discard()
    onStreamed?.()
  }

  res.writeHead = function heldWriteHead(this: ServerResponse, ...args: unknown[]) {
    if (headers === undefined) {
      status = Number(args[0])
      headers = headersWith(this, typeof args[1] === 'string' ? args[2] : args[1])
    }
    return this
  } as ServerResponse['writeHead']
  res.write = function heldWrite(this: ServerResponse, ...args: unknown[]) {
    const buf = toBuffer(args[0], args[1])
    if (headers === undefined && committed === undefined) committed = signature()
    if (buf !== undefined && buf.length > 0) body.add(buf, true)
    if (body.over && !streaming) startStreaming()
    const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined
    if (cb) process.nextTick(cb)
    return true
  } as ServerResponse['write']
  res.end = function heldEnd(this: ServerResponse, ...args: unknown[]) {
    const buf = typeof args[0] === 'function' ? undefined : toBuffer(args[0], args[1])
    if (buf !== undefined && buf.length > 0) body.add(buf, true)
    if (body.over && !streaming) startStreaming()
    if (streaming) {
      restore()
      return res.end()
    }
    // Headers or status changed after the first chunk: an error handler answered over it.
    if (committed !== undefined && headers === undefined && signature() !== committed) failed = true
    snapshot()
    const held: HeldResponse = {
      status: status as number,
      headers: headers as HeaderPairs,
      body: body.bytes(),
    }
    if (failed) held.failed = true
    body.discard()
    restore()
    decide(held).then(
      (final) => {
        send(res, final.status, final.headers)
        res.end(final.body)
      },
      () => {
        send(res, held.status, held.headers)
        res.end(held.body)
      },
    )
    return this
  } as ServerResponse['end']
}

/** Replaces `res`'s headers with `headers` and sets the status. */
function send(res: ServerResponse, status: number, headers: HeaderPairs): void {
  if (res.headersSent) return
  replaceHeaders(res, headers)
  res.statusCode = status
}
