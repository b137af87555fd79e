/**
 * The public API's types: test/types/public-api.ts compiles, and each of its
 * `@ts-expect-error` lines is an error (tsc reports an unused one), so both
 * types that stopped accepting what they should and types that became too
 * loose (wrong option types, wrong callback shapes, getOrSet's result,
 * adapters' middleware where each framework expects it) fail here.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

describe('public API types', () => {
  it('test/types/public-api.ts compiles, every @ts-expect-error being an error', async () => {
    const result = await run(process.execPath, [tsc, '-p', 'test/types/tsconfig.json'], {
      cwd: root,
    }).then(
      () => ({ code: 0, output: '' }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: error.code ?? 1,
        output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
      }),
    )
    assert.equal(result.code, 0, result.output)
  })
})
