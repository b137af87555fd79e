/**
 * Vitest configuration for Keyv's official storage-adapter suite
 * (`@keyv/test-suite`, written for vitest) run against `toKeyvStore`.
 * `test/keyv-suite.test.ts` runs it from `npm test`.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/keyv-suite/**/*.spec.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    watch: false,
  },
})
