/**
 * Helpers for adapters whose response is a `node:http` ServerResponse
 * (Express/Connect, Koa). Shared code, not an adapter: adapters import it and
 * core, never each other.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'

/** Response headers as ordered `[name, value]` pairs, one pair per value. */
export type HeaderPairs = [string, string][]

/** Appends a header's value(s) to `out`, one pair per value; skips unset values. */
export function pushHeader(out: HeaderPairs, name: string, value: unknown): void {
  if (value === undefined || value === null) return
  if (Array.isArray(value)) for (const v of value) out.push([name, String(v)])
  else out.push([name, String(value)])
}

/** The headers set on `res` so far, names as they were set (`getRawHeaderNames`). */
export function currentHeaders(res: ServerResponse): HeaderPairs {
  const out: HeaderPairs = []
  const raw = (res as { getRawHeaderNames?: () => string[] }).getRawHeaderNames
  const names = typeof raw === 'function' ? raw.call(res) : res.getHeaderNames()
  for (const name of names) pushHeader(out, name, res.getHeader(name))
  return out
}

/** `currentHeaders` with the headers passed to `writeHead` applied, as Node applies them. */
export function headersWith(res: ServerResponse, extra: unknown): HeaderPairs {
  const out = currentHeaders(res)
  if (extra === undefined || extra === null) return out
  if (Array.isArray(extra)) {
    if (extra.length > 0 && Array.isArray(extra[0])) {
      for (const pair of extra as unknown[][]) pushHeader(out, String(pair[0]), pair[1])
    } else {
      for (let i = 0; i + 1 < extra.length; i += 2) pushHeader(out, String(extra[i]), extra[i + 1])
    }
    return out
  }
  if (typeof extra === 'object') {
    for (const [name, value] of Object.entries(extra as OutgoingHttpHeaders)) {
      const lower = name.toLowerCase()
      const kept = out.filter(([n]) => n.toLowerCase() !== lower)
      out.length = 0
      out.push(...kept)
      pushHeader(out, name, value)
    }
  }
  return out
}

/** A written chunk as a Buffer (strings in their encoding); `undefined` for anything else. */
export function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string') {
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
  }
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array)
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  return undefined
}
