/**
 * Validation as framework-neutral steps: the automatic ETag, the answer to a
 * GET/HEAD's conditional headers (304 or 412) and the answer to an unsafe
 * method's preconditions. Adapters hold the response back, call these, and
 * send what they return.
 */
import { bodyETag, headerBag, headerValue, parseHttpDate } from './headers.js'
import {
  evaluatePreconditions,
  notModifiedHeaders,
  type RequestInfo,
  type Validators,
} from './semantics.js'
import type { HttpResponse } from './shared-cache.js'

/**
 * Options of every adapter's `validation()` (each exports this type as its
 * own `ValidationOptions`).
 */
export interface ValidationOptions {
  /** Add a strong ETag (hash of the body) to GET/HEAD 200 responses without one. @default true */
  etag?: boolean
  /**
   * The largest body held back to hash, bytes; a larger one goes out as it
   * is, unvalidated.
   * @default 5 MiB
   */
  maxBodyBytes?: number
}

/** `maxBodyBytes` of {@link ValidationOptions} by default: 5 MiB. */
export const VALIDATION_MAX_BODY_BYTES = 5 << 20

export { bodyETag }

/**
 * The framework requests (a Node `IncomingMessage`, a web `Request`) that
 * carry the shared cache's own revalidation of a stored response: their
 * conditional headers are the cache's, never a client's.
 */
const revalidations = new WeakSet<object>()

/**
 * Marks `request` as the shared cache's revalidation, before the origin runs:
 * `validation()` then adds its ETag but answers no precondition on it, so
 * the cache gets the origin's full response (in-process, the body is there
 * anyway) and replaces the stored headers with its own, instead of a 304
 * that would keep the stale ones.
 */
export function markRevalidation(request: object): void {
  revalidations.add(request)
}

/** Whether {@link markRevalidation} marked `request`. */
export function isRevalidation(request: object): boolean {
  return revalidations.has(request)
}

/** An empty 412 Precondition Failed. */
export function preconditionFailed(): HttpResponse {
  return { status: 412, headers: [['Content-Length', '0']], body: Buffer.alloc(0) }
}

/**
 * Validation of a GET or HEAD response: adds a strong ETag to a 200 without
 * one (when `etag` is on and the body is known), then answers the request's
 * conditional headers: a 304 with the RFC 9110 §15.4.5 fields, or a 412.
 * Other responses come back unchanged. `preconditions: false` (the shared
 * cache's own revalidation, see `markRevalidation`) only adds the ETag.
 */
export function validateResponse(
  req: RequestInfo,
  res: HttpResponse,
  options: { etag?: boolean; preconditions?: boolean } = {},
): HttpResponse {
  if (res.status !== 200 || (req.method !== 'GET' && req.method !== 'HEAD')) return res
  let headers = res.headers
  let bag = headerBag(headers)
  if (
    (options.etag ?? true) &&
    headerValue(bag, 'etag') === undefined &&
    res.body !== undefined &&
    res.body.length > 0
  ) {
    headers = [...headers, ['ETag', bodyETag(res.body)]]
    bag = headerBag(headers)
  }
  if (options.preconditions === false) return { ...res, headers }
  const result = evaluatePreconditions(req, {
    etag: headerValue(bag, 'etag'),
    lastModified: parseHttpDate(headerValue(bag, 'last-modified')),
  })
  if (result === 'not-modified') {
    const keep = new Set(Object.keys(notModifiedHeaders(bag)))
    return {
      status: 304,
      headers: headers.filter(([n]) => keep.has(n.toLowerCase())),
      body: undefined,
    }
  }
  if (result === 'failed') return preconditionFailed()
  return { ...res, headers }
}

/**
 * The answer to an unsafe method's preconditions against the current
 * validators: a 412 (or a 304 for a safe method), or `undefined` to proceed
 * with the handler.
 */
export function checkPreconditions(
  req: RequestInfo,
  validators: Validators,
): HttpResponse | undefined {
  const result = evaluatePreconditions(req, validators)
  if (result === 'proceed') return undefined
  if (result === 'not-modified' && (req.method === 'GET' || req.method === 'HEAD')) {
    return { status: 304, headers: [], body: undefined }
  }
  return preconditionFailed()
}
