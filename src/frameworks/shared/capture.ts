/**
 * Capturing a `node:http` response for the view-caching engine while it
 * passes through, and replaying a hit onto one: shared by the adapters whose
 * response is a `ServerResponse` (Express/Connect, NestJS).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Slot } from '../../core/slot.js'
import {
  type CapturedResponse,
  responseTimeoutOf,
  type ViewCache,
  type ViewHit,
  type ViewMiss,
} from '../../core/view/index.js'
import { parseHttpDate } from '../../http/headers.js'
import { evaluatePreconditions } from '../../http/semantics.js'
import { BoundedBody } from './body.js'
import {
  currentHeaders,
  type HeaderPairs,
  headersWith,
  sentHeaders,
  snapshotHeaders,
  splitHeaders,
  toBuffer,
} from './node-response.js'

/**
 * Wraps `res.writeHead`/`write`/`end` for one response to capture what the
 * rest of the chain sends, passing every call through unchanged, and stores
 * it once the response has finished. Covers `res.send`, `res.json`,
 * `res.sendFile`, `stream.pipe(res)` and a compression layer on either side,
 * and whatever a framework on `node:http` writes (NestJS on Express or
 * Fastify). `errored` tells, once the response finished, whether the handler
 * failed (a failed response is never stored).
 */
export function captureResponse<Req>(
  engine: ViewCache<Req>,
  res: ServerResponse,
  miss: ViewMiss,
  slot: Slot,
  errored: () => boolean,
): void {
  // Headers set before the cache ran (outer middleware such as CORS) are
  // recomputed per request, on hits too; only what the route adds is stored.
  const before = snapshotHeaders(res)
  let status = 0
  let headers: HeaderPairs | undefined
  const body = new BoundedBody(engine.maxBodySize)
  let ended = false
  // A stream piped into the response that fails mid-way leaves a truncated body,
  // even when the app then ends the response: such a response failed.
  let sourceFailed = false
  res.on('pipe', (source: NodeJS.ReadableStream) => {
    // First in line, so it counts even when the app's own listener ends the response.
    source.prependOnceListener('error', () => {
      sourceFailed = true
    })
  })

  const collect = (chunk: unknown, encoding: unknown): void => {
    if (ended || typeof chunk === 'function') return
    const buf = toBuffer(chunk, encoding)
    if (buf !== undefined && buf.length > 0) body.add(buf, true)
  }

  const origWriteHead = res.writeHead
  const origWrite = res.write
  const origEnd = res.end
  res.writeHead = function cachetteWriteHead(this: ServerResponse, ...args: unknown[]) {
    if (headers === undefined) {
      status = Number(args[0])
      headers = headersWith(this, typeof args[1] === 'string' ? args[2] : args[1])
    }
    return (origWriteHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
  res.write = function cachetteWrite(this: ServerResponse, ...args: unknown[]) {
    collect(args[0], args[1])
    return (origWrite as (...a: unknown[]) => boolean).apply(this, args)
  } as ServerResponse['write']
  res.end = function cachetteEnd(this: ServerResponse, ...args: unknown[]) {
    collect(args[0], args[1])
    ended = true
    return (origEnd as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['end']

  res.once('finish', () => {
    if (headers === undefined) {
      status = res.statusCode
      headers = currentHeaders(res)
    }
    const response: CapturedResponse = {
      status,
      headers: splitHeaders(headers, before).own,
      sent: sentHeaders(res),
      body: body.take(),
      complete: ended,
      errored: sourceFailed || errored(),
    }
    void engine.store(miss, response, slot, responseTimeoutOf(res))
  })
  // A response that never finishes (the client went away) stores nothing:
  // requests waiting for this render stop waiting.
  res.once('close', () => {
    if (!res.writableFinished) engine.settle(miss, slot)
  })
}

/** Replays a hit: stored headers over those already set, then status and body. */
export function replayHit(res: ServerResponse, hit: ViewHit): void {
  // A list is copied: the hit is shared, and Node's `appendHeader` appends to a list in place.
  for (const [name, value] of hit.grouped) {
    res.setHeader(name, typeof value === 'string' ? value : [...value])
  }
  res.writeHead(hit.status)
  if (hit.body === undefined) res.end()
  else res.end(hit.body)
}

/** The fields Express's `res.send` drops from a 304 it answers (and nothing else). */
const NOT_MODIFIED_DROPS = new Set(['content-type', 'content-length', 'transfer-encoding'])

/**
 * Whether Express itself would have answered this hit with 304: `res.send`
 * does when the request is a GET or HEAD whose `If-None-Match` (else
 * `If-Modified-Since`) matches the 2xx response's `ETag` (`Last-Modified`)
 * and that does not ask for `Cache-Control: no-cache` (the `fresh` package).
 * A replayed hit bypasses `res.send`, so the adapter runs the same check.
 */
export function notModifiedByExpress(req: IncomingMessage, hit: ViewHit): boolean {
  const method = req.method
  if ((method !== 'GET' && method !== 'HEAD') || hit.status < 200 || hit.status >= 300) return false
  const inm = req.headers['if-none-match']
  const ims = req.headers['if-modified-since']
  if (inm === undefined && ims === undefined) return false
  const control = req.headers['cache-control']
  if (control !== undefined && /(?:^|,)\s*no-cache\s*(?:,|$)/i.test(control)) return false
  let etag: string | undefined
  let lastModified: string | undefined
  for (const [name, value] of hit.headers) {
    const lower = name.toLowerCase()
    if (lower === 'etag') etag = value
    else if (lower === 'last-modified') lastModified = value
  }
  if (etag === undefined && lastModified === undefined) return false
  const conditions = inm === undefined ? { 'if-modified-since': ims } : { 'if-none-match': inm }
  return (
    evaluatePreconditions(
      { method, headers: conditions },
      { etag, lastModified: parseHttpDate(lastModified) },
    ) === 'not-modified'
  )
}

/** Answers a hit with 304, as Express's `res.send` would: the hit's headers without its body's. */
export function replayNotModified(res: ServerResponse, hit: ViewHit): void {
  for (const [name, value] of hit.grouped) {
    if (NOT_MODIFIED_DROPS.has(name.toLowerCase())) continue
    res.setHeader(name, typeof value === 'string' ? value : [...value])
  }
  res.writeHead(304)
  res.end()
}

/**
 * Holds back the end of `res` until `before(status)` has run, so that what
 * it does (`invalidateOnUnsafe` deleting a cached page) is done before the
 * client has the whole response and can ask again. Headers and body chunks
 * written earlier go out as usual.
 */
export function endAfter(res: ServerResponse, before: (status: number) => Promise<void>): void {
  const end = res.end
  res.end = function heldEnd(this: ServerResponse, ...args: unknown[]): ServerResponse {
    res.end = end
    before(res.statusCode).then(() => (end as (...a: unknown[]) => unknown).apply(res, args))
    return res
  } as ServerResponse['end']
}
