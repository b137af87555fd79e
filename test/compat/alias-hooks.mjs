/**
 * Module customization hooks (node:module `register()`) behind
 * test/compat/alias-loader.mjs: rewrites bare specifiers for ES module
 * imports, from any importer, node_modules included.
 */
import { rewrite } from './aliases.mjs'

/** @type {Record<string, string>} */
let aliases = {}

/** Receives the mapping from alias-loader.mjs. */
export function initialize(data) {
  aliases = data ?? {}
}

/** Resolves `fastify` (and `fastify/...`) as the aliased package, e.g. `fastify-4`. */
export function resolve(specifier, context, nextResolve) {
  return nextResolve(rewrite(aliases, specifier), context)
}
