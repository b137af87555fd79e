import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const worker = fileURLToPath(new URL('./fixtures/memoize-worker.ts', import.meta.url))

describe('memoize across processes', () => {
  let dir = ''
  after(() => rm(dir, { recursive: true, force: true }))

  it('the same function in two processes shares entries; a different function does not', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachette-memo-'))
    const runWorker = async () => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', worker, dir])
      return JSON.parse(stdout) as { pid: number; first: string; second: string }
    }
    const a = await runWorker()
    const b = await runWorker()
    assert.notEqual(a.pid, b.pid)
    assert.equal(a.first, `first:${a.pid}:1`, 'the first process computes')
    assert.equal(a.second, `second:${a.pid}:1`, 'a different function has its own entries')
    assert.equal(b.first, `first:${a.pid}:1`, 'the second process reads the first one result')
    assert.equal(b.second, `second:${a.pid}:1`)
  })
})
