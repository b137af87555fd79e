/**
 * Reading a Fastify reply in `onSend`, shared by the view cache (hooks.ts)
 * and the HTTP caching plugins (http.ts): its headers as pairs, and the
 * serialized payload as bytes.
 */
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { FastifyReply } from 'fastify'
import { type HeaderPairs, toBuffer } from '../shared/node-response.js'

/** The reply's headers (Fastify's and any set on `reply.raw`) as pairs; a repeated header is several pairs. */
export function headerPairs(reply: FastifyReply): HeaderPairs {
  const out: HeaderPairs = []
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value === undefined || value === null) continue
    if (Array.isArray(value)) for (const v of value) out.push([name, String(v)])
    else out.push([name, String(value)])
  }
  return out
}

/** Whether an `onSend` payload is a web `Response` (a route may return one). */
export function isResponse(payload: unknown): payload is Response {
  return (
    typeof payload === 'object' &&
    payload !== null &&
    Object.prototype.toString.call(payload) === '[object Response]'
  )
}

/**
 * What Fastify does with a `Response` payload, done here so its body can be
 * read: puts its status and headers on the reply and returns its body
 * (`null` for none), the payload to go on with.
 */
export function unwrapResponse(reply: FastifyReply, response: Response): Response['body'] {
  reply.code(response.status)
  for (const [name, value] of response.headers) reply.header(name, value)
  return response.body ?? null
}

/** A string, Buffer or byte payload as a Buffer (no payload: empty); `undefined` for anything else (a stream). */
export function payloadBuffer(payload: unknown): Buffer | undefined {
  if (payload === undefined || payload === null) return Buffer.alloc(0)
  return toBuffer(payload, undefined)
}

/** A Node or web stream payload as a Node readable; `undefined` for anything else. */
export function payloadStream(payload: unknown): Readable | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined
  if (typeof (payload as Readable).pipe === 'function') return payload as Readable
  if (typeof (payload as WebReadableStream).getReader === 'function') {
    return Readable.fromWeb(payload as WebReadableStream)
  }
  return undefined
}
