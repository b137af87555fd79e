/**
 * Helpers for adapters whose response is a `node:http` ServerResponse
 * (Express/Connect, Koa). Shared code, not an adapter: adapters import it and
 * core, never each other.
 */
import type { ServerResponse } from 'node:http'

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
