/**
 * The value a request's selecting header field (one its response's `Vary`
 * names) contributes to the stored variant's key, normalised as RFC 9111
 * §4.1 allows: two requests share a variant when their values differ only
 * in whitespace, in how the field's lines were combined, or in a way the
 * field's own definition says has the same meaning.
 */
import { splitList } from './headers.js'

/**
 * The content-negotiation fields (RFC 9110 §12.5): lists of members with an
 * optional weight `q`, whose order among members of different weights means
 * nothing. The value is the member's case-insensitive part (languages,
 * codings and charsets are case-insensitive; a media type's type and
 * subtype too).
 */
const NEGOTIATION_FIELDS: ReadonlySet<string> = new Set([
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
])

/** The fields whose members of equal weight may be reordered when `acceptOrder` is `'ignored'`. */
const ORDER_OPTIONAL_FIELDS: ReadonlySet<string> = new Set(['accept-encoding', 'accept-language'])

/** RFC 9110 §12.4.2: a qvalue is 0 to 1 with at most three decimals. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

interface Member {
  text: string
  weight: number
  index: number
}

/** One member of a negotiation field, normalised: lower-case range, `;`-parameters without spaces, `q` as a number. */
function member(raw: string, lowerParams: boolean, index: number): Member {
  const parts = raw.split(';').map((p) => p.trim())
  const out = [(parts[0] ?? '').toLowerCase()]
  let weight = 1
  for (const param of parts.slice(1)) {
    if (param === '') continue
    const eq = param.indexOf('=')
    const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase()
    const value = eq < 0 ? '' : param.slice(eq + 1).trim()
    if (name === 'q' && QVALUE.test(value)) {
      weight = Number(value)
      // q=1 is the default weight: `en;q=1` is `en`.
      if (weight !== 1) out.push(`q=${weight}`)
    } else {
      out.push(eq < 0 ? name : `${name}=${lowerParams ? value.toLowerCase() : value}`)
    }
  }
  return { text: out.join(';'), weight, index }
}

/**
 * `value` of the request field `name` (lower-case) as a variant key part;
 * `undefined` when the request has no such field. Every field is trimmed.
 * The negotiation fields (`Accept`, `Accept-Charset`, `Accept-Encoding`,
 * `Accept-Language`) are compared member by member: case-insensitively,
 * without whitespace, each member once, ordered by weight. Members of equal
 * weight keep their order (negotiators prefer the earlier one), unless
 * `acceptOrder` is `'ignored'`, which sorts them too for `Accept-Encoding`
 * and `Accept-Language`.
 */
export function variantValue(
  name: string,
  value: string | undefined,
  acceptOrder: 'significant' | 'ignored' = 'significant',
): string | undefined {
  if (value === undefined) return undefined
  if (!NEGOTIATION_FIELDS.has(name)) return value.trim()
  // A media type's parameter values may be case-sensitive; the other fields' are not.
  const lowerParams = name !== 'accept'
  const seen = new Set<string>()
  const members: Member[] = []
  for (const raw of splitList(value)) {
    const m = member(raw, lowerParams, members.length)
    if (m.text === '' || seen.has(m.text)) continue
    seen.add(m.text)
    members.push(m)
  }
  const unordered = acceptOrder === 'ignored' && ORDER_OPTIONAL_FIELDS.has(name)
  members.sort(
    (a, b) =>
      b.weight - a.weight ||
      (unordered ? (a.text < b.text ? -1 : a.text > b.text ? 1 : 0) : a.index - b.index),
  )
  return members.map((m) => m.text).join(',')
}
