/**
 * The package mapping the compatibility runs use: CACHETTE_ALIASES is a JSON
 * object from a package name to the name of a devDependency alias of an older
 * major, e.g. `{"fastify":"fastify-4"}` (package.json has
 * `"fastify-4": "npm:fastify@^4.29.1"`).
 */

/** Reads and checks the mapping in CACHETTE_ALIASES (empty when unset). */
export function readAliases(env = process.env) {
  const raw = env.CACHETTE_ALIASES
  if (!raw) return {}
  const parsed = JSON.parse(raw)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`CACHETTE_ALIASES must be a JSON object, got ${raw}`)
  }
  for (const [from, to] of Object.entries(parsed)) {
    if (typeof to !== 'string' || to === '' || from === '') {
      throw new TypeError(`CACHETTE_ALIASES: "${from}" must map to a package name`)
    }
  }
  return parsed
}

/**
 * The specifier to load instead of `specifier`: a bare `name` or `name/sub/path`
 * whose `name` is mapped becomes `alias` or `alias/sub/path`; anything else
 * (relative, absolute, `node:`, URLs, other packages) is returned unchanged.
 */
export function rewrite(aliases, specifier) {
  for (const from in aliases) {
    if (specifier === from) return aliases[from]
    if (specifier.startsWith(`${from}/`)) return aliases[from] + specifier.slice(from.length)
  }
  return specifier
}
