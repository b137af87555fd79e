/**
 * Runs Keyv's official storage-adapter suite (`@keyv/test-suite`, a vitest
 * suite) against `toKeyvStore` as part of `npm test`: vitest runs
 * test/keyv-suite/ in a child process, and this test asserts that it
 * passed and ran tests.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const vitestBin = join(
  dirname(createRequire(import.meta.url).resolve('vitest/package.json')),
  'vitest.mjs',
)

test('@keyv/test-suite passes against toKeyvStore (SimpleCache and RedisCache)', async () => {
  const { code, output } = await new Promise<{ code: number | null; output: string }>(
    (resolve, reject) => {
      const child = spawn(
        process.execPath,
        [vitestBin, 'run', '--config', 'test/keyv-suite/vitest.config.ts', '--reporter=verbose'],
        {
          cwd: root,
          env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let output = ''
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString()
      })
      child.stderr.on('data', (d: Buffer) => {
        output += d.toString()
      })
      const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
      child.once('error', reject)
      child.once('close', (code) => {
        clearTimeout(timer)
        resolve({ code, output })
      })
    },
  )
  assert.equal(code, 0, `vitest failed:\n${output.slice(-6000)}`)
  const passed = /Tests\s+(\d+) passed/.exec(output)
  assert.ok(passed, `no "Tests N passed" line in:\n${output.slice(-3000)}`)
  assert.ok(Number(passed[1]) >= 60, `only ${passed[1]} Keyv suite tests ran`)
  assert.doesNotMatch(output, /\b\d+ (failed|skipped)\b/)
  for (const backend of ['over SimpleCache', 'over RedisCache']) {
    assert.ok(output.includes(backend), `the ${backend} suite ran`)
  }
})
