/**
 * Loads an older major of a peer dependency in place of the installed one, so
 * the existing adapter tests run unchanged against it:
 *
 *   CACHETTE_ALIASES='{"fastify":"fastify-4"}' \
 *     node --import tsx --import ./test/compat/alias-loader.mjs --test test/fastify.test.ts
 *
 * Every bare `fastify` / `fastify/...` specifier then resolves to the
 * `fastify-4` devDependency alias, for every importer, packages in
 * node_modules included (so `@nestjs/core` 11 gets `@nestjs/common` 11 when
 * both are mapped): ES module imports through a `register()` resolve hook,
 * CommonJS `require()` (which Node 20 does not pass through those hooks)
 * through `Module._resolveFilename`. Test files run by `node --test` inherit
 * the flag and the variable. Installs once per process.
 */
import Module, { register } from 'node:module'
import { readAliases, rewrite } from './aliases.mjs'

const INSTALLED = Symbol.for('cachette.compat.aliases')
const aliases = readAliases()

if (!globalThis[INSTALLED] && Object.keys(aliases).length > 0) {
  globalThis[INSTALLED] = aliases
  register('./alias-hooks.mjs', import.meta.url, { data: aliases })
  const resolveFilename = Module._resolveFilename
  Module._resolveFilename = function (request, ...rest) {
    return resolveFilename.call(this, rewrite(aliases, request), ...rest)
  }
}
