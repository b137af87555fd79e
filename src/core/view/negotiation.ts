/**
 * Content negotiation of the view engine: the codings it keeps variants
 * for ({@link VIEW_ENCODINGS}), a request's `Accept-Encoding` and a stored
 * response's `Content-Encoding`.
 */
import { headerValue } from '../headers.js'

/**
 * Content codings the lookup considers, in order of preference for equal
 * q-values. A response encoded with one of them is stored at `key|<coding>`.
 */
export const VIEW_ENCODINGS: readonly string[] = ['br', 'zstd', 'gzip', 'deflate']

/** A parsed `Accept-Encoding`: the acceptable codings of {@link VIEW_ENCODINGS} by preference, and whether identity is acceptable. */
export interface AcceptedEncodings {
  /** Acceptable codings, best first (q-value, then {@link VIEW_ENCODINGS} order). */
  readonly encodings: readonly string[]
  /** Whether an unencoded body is acceptable (false only for `identity;q=0`, or `*;q=0` without identity). */
  readonly identity: boolean
  /** Whether `coding` is acceptable. */
  accepts(coding: string): boolean
}

const IDENTITY_ONLY: AcceptedEncodings = {
  encodings: [],
  identity: true,
  accepts: (c) => c === 'identity',
}

/** Parsed `Accept-Encoding` values: clients send few distinct ones, so a hit need not parse again. */
const acceptCache = new Map<string, AcceptedEncodings>()
const ACCEPT_CACHE_SIZE = 64

/** Parses an `Accept-Encoding` header (RFC 9110 §12.5.3). A missing header accepts identity only. */
export function parseAcceptEncoding(header: string | undefined): AcceptedEncodings {
  if (header === undefined) return IDENTITY_ONLY
  let parsed = acceptCache.get(header)
  if (parsed === undefined) {
    parsed = parseAccept(header)
    if (acceptCache.size >= ACCEPT_CACHE_SIZE) acceptCache.clear()
    acceptCache.set(header, parsed)
  }
  return parsed
}

function parseAccept(header: string): AcceptedEncodings {
  if (header.trim() === '') return IDENTITY_ONLY
  const q = new Map<string, number>()
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';')
    let name = (rawName ?? '').trim().toLowerCase()
    if (name === '') continue
    if (name === 'x-gzip') name = 'gzip'
    let weight = 1
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)
      if (m) weight = Number(m[1])
    }
    if (!Number.isFinite(weight)) weight = 0
    q.set(name, Math.max(q.get(name) ?? 0, weight))
  }
  const star = q.get('*')
  const weightOf = (c: string): number => q.get(c) ?? star ?? 0
  const encodings = VIEW_ENCODINGS.filter((c) => weightOf(c) > 0)
    .map((c, i) => [c, weightOf(c), i] as const)
    .sort((a, b) => b[1] - a[1] || a[2] - b[2])
    .map(([c]) => c)
  const identityQ = q.get('identity')
  const identity = identityQ !== undefined ? identityQ > 0 : star === undefined || star > 0
  return {
    encodings,
    identity,
    accepts: (c) => {
      const coding = c.toLowerCase()
      return coding === 'identity' ? identity : weightOf(coding) > 0
    },
  }
}

/** A response's content coding (lower case), `undefined` for identity. */
export function contentCoding(headers: readonly (readonly [string, string])[]): string | undefined {
  const ce = headerValue(headers, 'content-encoding')?.trim().toLowerCase()
  return ce === undefined || ce === '' || ce === 'identity' ? undefined : ce
}
