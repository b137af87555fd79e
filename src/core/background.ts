/**
 * Background requests to the app's own server: how the view cache
 * (`cached({ grace })`) and the HTTP shared cache (stale-while-revalidate)
 * render a stale entry again without a client waiting. Both repeat the
 * request that found the entry stale, to the local address of its socket,
 * with a secret header that makes the cache render instead of serve.
 */

/**
 * Headers that describe one connection (hop by hop), not the request or the
 * representation: never stored with a response, never repeated.
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]

/** Request headers a background request does not repeat (besides the conditional `if-*` ones). */
const NOT_REPEATED: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length'])

/** The local end of a request's connection (a `net.Socket`). */
export interface LocalSocket {
  /** The address the server accepted the connection on. */
  readonly localAddress?: string | undefined
  /** The port the server listens on. */
  readonly localPort?: number | undefined
}

/** `http://address:port` of a socket's local end (IPv4-mapped addresses unwrapped). */
export function socketOrigin(socket: LocalSocket): string {
  const address = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '')
  const host = address.includes(':') ? `[${address}]` : address
  return `http://${host}:${socket.localPort}`
}

/**
 * The headers a background request repeats: every request header but the
 * connection's, `Host`, `Content-Length` and the conditional ones (the
 * refresh must get a full response, not a 304). Names come out in lower case.
 */
export function repeatedHeaders(
  entries: Iterable<readonly [string, string | number | readonly string[] | undefined]>,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of entries) {
    const n = name.toLowerCase()
    if (value === undefined || NOT_REPEATED.has(n) || n.startsWith('if-')) continue
    out[n] = typeof value === 'object' ? value.join(', ') : String(value)
  }
  return out
}

/**
 * Sends a GET in the background and drains its response; at most 30 s.
 * Failures go to `onError` (the stale entry then stays until it expires).
 */
export function requestInBackground(
  url: string,
  headers: Record<string, string>,
  onError: (error: unknown) => void,
): void {
  fetch(url, { headers, signal: AbortSignal.timeout(30_000) })
    .then((r) => r.arrayBuffer())
    .catch(onError)
}
