/**
 * Holding back a `node:http` response until it is complete, so that it can
 * be changed (a 304 instead of a 200, an ETag added, a stored response sent
 * instead of the origin's 304) before anything reaches the client. A body
 * larger than the limit is not held: what was held is sent as it was, and
 * the rest streams through unchanged.
 */
import type { ServerResponse } from 'node:http'
import { groupHeaders } from '../../core/view.js'
import { currentHeaders, type HeaderPairs, headersWith, toBuffer } from './node-response.js'

/** Where a response keeps the header modifiers (`cacheFor`, `vary`, ...) its routes queued. */
export const HEADER_MODIFIERS = Symbol.for('cachette.http.modifiers')

/** A queued change to a response's headers (see `cachette/http`'s directives). */
export type QueuedModifier = (headers: [string, string][], now: number) => void

/** Applies the modifiers queued on `res` to `headers`, in order (the innermost wins). */
export function applyModifiers(res: ServerResponse, headers: HeaderPairs): void {
  const list = (res as ServerResponse & { [HEADER_MODIFIERS]?: QueuedModifier[] })[HEADER_MODIFIERS]
  if (list === undefined) return
  const now = Date.now()
  for (const m of list) m(headers, now)
}

/** A complete response held back. */
export interface HeldResponse {
  status: number
  headers: HeaderPairs
  body: Buffer
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
  let chunks: Buffer[] = []
  let size = 0
  let streaming = false
  let modified = false

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
    if (!modified) {
      modified = true
      applyModifiers(res, headers)
    }
  }
  const startStreaming = () => {
    streaming = true
    restore()
    snapshot()
    send(res, status as number, headers as HeaderPairs)
    for (const c of chunks) res.write(c)
    chunks = []
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
    if (buf !== undefined && buf.length > 0) {
      size += buf.length
      chunks.push(Buffer.from(buf))
    }
    if (size > maxBytes && !streaming) startStreaming()
    const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined
    if (cb) process.nextTick(cb)
    return true
  } as ServerResponse['write']
  res.end = function heldEnd(this: ServerResponse, ...args: unknown[]) {
    const buf = typeof args[0] === 'function' ? undefined : toBuffer(args[0], args[1])
    if (buf !== undefined && buf.length > 0) {
      size += buf.length
      chunks.push(Buffer.from(buf))
    }
    if (size > maxBytes && !streaming) startStreaming()
    if (streaming) {
      restore()
      return res.end()
    }
    snapshot()
    const held: HeldResponse = {
      status: status as number,
      headers: headers as HeaderPairs,
      body: Buffer.concat(chunks, size),
    }
    chunks = []
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

/** Replaces `res`'s headers with `headers` and writes the status line. */
function send(res: ServerResponse, status: number, headers: HeaderPairs): void {
  if (res.headersSent) return
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  for (const [name, value] of groupHeaders(headers)) res.setHeader(name, value)
  res.statusCode = status
}
