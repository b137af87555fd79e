/**
 * How error messages name a value they refuse: strings quoted (so an empty
 * or padded one shows), else its kind. Never the value itself for objects,
 * which may be large or hold secrets.
 */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'})`
  if (typeof value === 'symbol') return 'a symbol'
  return typeof value
}
