/**
 * The HTTP vocabulary shared by the view engine (`core/view/`) and
 * `cachette/http` (which re-exports the public parts from `http/headers.ts`):
 * reading header fields (one field's value, list fields, `Cache-Control`,
 * `Vary`), grouping header pairs for a framework, which statuses carry no
 * content, and the request's precondition fields. Strict and never
 * throwing: a malformed element is ignored, as RFC 9110 and RFC 9111 say.
 */

/** Header fields by lower-case name. Node's `IncomingHttpHeaders` and `OutgoingHttpHeaders` fit. */
export type HeaderBag = Record<string, string | string[] | number | undefined>

/** Header fields as ordered `[name, value]` pairs (names as sent); a repeated field is several pairs. */
export type HeaderPairs = [string, string][]

/** {@link HeaderPairs} as read, never changed. */
type ReadonlyPairs = readonly (readonly [string, string])[]

/** One field's value, comma-joined when it was sent several times (`Set-Cookie` aside). */
export function headerValue(headers: HeaderBag, name: string): string | undefined
/** One field's value from `[name, value]` pairs (names compared case-insensitively), comma-joined when repeated. */
export function headerValue(headers: ReadonlyPairs, name: string): string | undefined
export function headerValue(headers: HeaderBag | ReadonlyPairs, name: string): string | undefined {
  if (Array.isArray(headers)) {
    const lower = name.toLowerCase()
    let out: string | undefined
    for (const [n, v] of headers as ReadonlyPairs) {
      if (n.toLowerCase() === lower) out = out === undefined ? v : `${out}, ${v}`
    }
    return out
  }
  const bag = headers as HeaderBag
  const v = bag[name] ?? bag[name.toLowerCase()]
  if (v === undefined) return undefined
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.join(', ')
  return String(v)
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Whether `value` is an RFC 9110 token: what a field name or a directive name must be. */
export function isToken(value: string): boolean {
  return TOKEN.test(value)
}

/**
 * Splits a list-based field on commas outside quoted strings (RFC 9110 §5.6.1).
 * Empty elements are dropped.
 */
export function splitList(value: string): string[] {
  const out: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string
    if (quoted) {
      current += c
      if (c === '\\' && i + 1 < value.length) current += value[++i]
      else if (c === '"') quoted = false
    } else if (c === '"') {
      quoted = true
      current += c
    } else if (c === ',') {
      if (current.trim() !== '') out.push(current.trim())
      current = ''
    } else current += c
  }
  if (current.trim() !== '') out.push(current.trim())
  return out
}

/** Whether the list field `value` has the element `token` (compared case-insensitively; `token` in lower case). */
export function listHas(value: string | undefined, token: string): boolean {
  return value !== undefined && splitList(value).some((t) => t.toLowerCase() === token)
}

/** Cache-Control directives by lower-case name: `true` for a bare directive, else the unquoted value. */
export type Directives = Map<string, string | true>

function unquote(value: string): string | undefined {
  if (!value.startsWith('"')) return TOKEN.test(value) ? value : undefined
  if (value.length < 2 || !value.endsWith('"')) return undefined
  return value.slice(1, -1).replace(/\\(.)/g, '$1')
}

/** The lower-case name of the `Cache-Control` element `element` (`eq`: where its `=` is), when it is a token. */
function directiveName(element: string, eq: number): string | undefined {
  const name = (eq < 0 ? element : element.slice(0, eq)).trim().toLowerCase()
  return TOKEN.test(name) ? name : undefined
}

/**
 * Parses `Cache-Control` (RFC 9111 §5.2). Directive names are
 * case-insensitive; a value may be a token or a quoted string; a malformed
 * element is ignored; when a directive appears twice, the first wins
 * (RFC 9111 §4.2.1).
 */
export function parseCacheControl(value: string | undefined): Directives {
  const out: Directives = new Map()
  if (value === undefined) return out
  for (const element of splitList(value)) {
    const eq = element.indexOf('=')
    const name = directiveName(element, eq)
    // RFC 9111 §4.2.1: with several values, the first occurrence is used.
    if (name === undefined || out.has(name)) continue
    if (eq < 0) {
      out.set(name, true)
      continue
    }
    const v = unquote(element.slice(eq + 1).trim())
    if (v !== undefined) out.set(name, v)
  }
  return out
}

/**
 * The names of the directives in a `Cache-Control` value (lower case),
 * whatever their values: {@link parseCacheControl} ignores an element with
 * a malformed value (`private=`), which must not lift a veto such as
 * `private` or `no-store`.
 */
export function cacheControlNames(value: string | undefined): Set<string> {
  const out = new Set<string>()
  if (value === undefined) return out
  for (const element of splitList(value)) {
    const name = directiveName(element, element.indexOf('='))
    if (name !== undefined) out.add(name)
  }
  return out
}

/** Field names listed in `Vary`, lower-cased; `['*']` for `Vary: *`. */
export function parseVary(value: string | undefined): string[] {
  if (value === undefined) return []
  const names = splitList(value).map((n) => n.toLowerCase())
  return names.includes('*') ? ['*'] : [...new Set(names)]
}

/**
 * Header pairs grouped by name (case-insensitively, first spelling kept),
 * one value or a list, ready for a framework's `setHeader`/`set`.
 */
export function groupHeaders(pairs: ReadonlyPairs): [string, string | string[]][] {
  const grouped = new Map<string, [string, string[]]>()
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase()
    const g = grouped.get(lower)
    if (g) g[1].push(value)
    else grouped.set(lower, [name, [value]])
  }
  return [...grouped.values()].map(([name, values]) => [
    name,
    values.length === 1 ? (values[0] as string) : values,
  ])
}

/**
 * Whether a response with `status` carries no content: 1xx, 204 (No
 * Content), 205 (Reset Content) and 304 (Not Modified), RFC 9110 §6.4.1.
 * The one rule of every adapter and the view engine.
 *
 * @param resetContent - whether 205 counts (by default it does). A 205 has
 * no content, but RFC 9110 §15.3.6 has that emptiness framed
 * (`Content-Length: 0`) where 1xx, 204 and 304 get no `Content-Length` at
 * all: a site deciding whether a response gets a `Content-Length` passes
 * `false` (as Fastify frames a 205 like any response).
 */
export function bodilessStatus(status: number, resetContent = true): boolean {
  return (
    (status >= 100 && status < 200) ||
    status === 204 ||
    status === 304 ||
    (resetContent && status === 205)
  )
}

/**
 * The request's preconditions (RFC 9110 §13.1.1 to §13.1.4), lower case:
 * what a cache answers itself and never forwards for a client. `If-Range`,
 * which only qualifies a `Range`, is not among them.
 */
export const PRECONDITION_HEADERS: readonly string[] = [
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
]
