/**
 * The `cachette` command line: `main()` run in-process with its own streams
 * against a SimpleCache shared through a module config file, a
 * FileSystemCache directory, a real redis-server and real memcached
 * servers; and the executable itself as a child process (through tsx, and
 * the built dist/cli.js).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { FileSystemCache } from '../src/backends/filesystem/index.js'
import type { SimpleCache } from '../src/backends/memory/index.js'
import { main } from '../src/cli/main.js'
import { ProgressBar } from '../src/cli/progress.js'
import { Cache } from '../src/index.js'
import { Lifetimes, silentLogger } from './helpers.js'
import { itemCount, startMemcached } from './servers/memcached.js'
import { startRedis } from './servers/redis.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string
  bin: Record<string, string>
}

const life = new Lifetimes()
after(() => life.stopAll())

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cachette-cli-'))
  dirs.push(dir)
  return dir
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Collects what is written to it. */
class Sink {
  text = ''
  write(chunk: string): boolean {
    this.text += chunk
    return true
  }
}

interface Run {
  code: number
  stdout: string
  stderr: string
  /** Milliseconds the command took. */
  ms: number
}

interface RunOptions {
  env?: Record<string, string | undefined>
  /** Whether stdin and stderr are terminals. @default false */
  isTTY?: boolean
  /** What the user types. */
  input?: string
  cwd?: string
}

/** Runs the command line in-process. */
async function cli(argv: string[], options: RunOptions = {}): Promise<Run> {
  const stdout = new Sink()
  const stderr = new Sink()
  const start = Date.now()
  const code = await main(argv, {
    stdout,
    stderr,
    stdin: Readable.from(options.input === undefined ? [] : [options.input]),
    isTTY: options.isTTY ?? false,
    env: options.env ?? {},
    cwd: options.cwd ?? root,
  })
  return { code, stdout: stdout.text, stderr: stderr.text, ms: Date.now() - start }
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')

/** No stack trace: no `    at ` frame lines. */
function assertNoStack(run: Run): void {
  assert.doesNotMatch(run.stderr, /\n\s+at /, run.stderr)
}

describe('cachette: the command line itself', () => {
  test('--help prints the usage on stdout; --version the package version', async () => {
    const help = await cli(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^Usage: cachette/)
    for (const command of ['get <key>', 'delete <key...>', 'keys', 'clear --prefix', 'stats']) {
      assert.ok(help.stdout.includes(command), command)
    }
    const version = await cli(['-v'])
    assert.deepEqual([version.code, version.stdout], [0, `${pkg.version}\n`])
  })

  test('usage errors exit with 2 and say what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['get'], /get needs <key>/],
      [['get', 'a', 'b'], /get takes one key, got 2/],
      [['delete'], /delete needs <key\.\.\.>/],
      [['keys', 'user:'], /keys takes no arguments.*did you mean --prefix user:/],
      [['get', 'k', '--prefix', 'x'], /get does not take --prefix/],
      [['stats', '--yes'], /stats does not take --yes/],
      [['keys', '--bogus'], /Unknown option '--bogus'/],
      [['clear', '--prefix', 'p', '--batch-size', '0', '--yes'], /--batch-size must be a positive/],
      [['get', ''], /empty string/],
    ]
    for (const [argv, message] of cases) {
      const run = await cli(argv, { env: { CACHE_TYPE: 'SimpleCache' } })
      assert.equal(run.code, 2, argv.join(' '))
      assert.match(run.stderr, message, argv.join(' '))
      assert.equal(run.stdout, '')
    }
  })

  test('a configuration error exits with 2 naming the key, without a stack trace', async () => {
    const bad = await cli(['get', 'k'], {
      env: { CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 'abc' },
    })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /configuration error: CACHE_DEFAULT_TIMEOUT: .*"abc"/)
    assertNoStack(bad)
    const typo = await cli(['stats'], { env: { CACHE_TYPE: 'SimpleCache', CACHE_TRESHOLD: '5' } })
    assert.equal(typo.code, 2)
    assert.match(typo.stderr, /CACHE_TRESHOLD: unknown configuration variable/)
    const none = await cli(['stats'], { env: { PATH: '/usr/bin' } })
    assert.equal(none.code, 2)
    assert.match(none.stderr, /CACHE_TYPE: not set/)
    const backend = await cli(['stats'], { env: { CACHE_TYPE: 'NoSuchCache' } })
    assert.equal(backend.code, 2)
    assert.match(backend.stderr, /CACHE_TYPE: unknown backend "NoSuchCache"/)
  })

  test('--debug adds the stack trace', async () => {
    const run = await cli(['get', 'k', '--debug'], {
      env: { CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 'abc' },
    })
    assert.equal(run.code, 2)
    assert.match(run.stderr, /\n\s+at /)
  })

  test('an in-memory backend named by CACHE_TYPE is refused with exit 2: the command would only see its own empty store', async () => {
    const dir = tempDir()
    const jsonConfig = join(dir, 'cachette.json')
    writeFileSync(jsonConfig, JSON.stringify({ CACHE_TYPE: 'SimpleCache' }))
    const runs = [
      ...[
        'SimpleCache',
        'simple',
        'NullCache',
        'ClusterCache',
        'flask_caching.backends.SimpleCache',
      ].map((type) => ({
        label: type,
        argv: ['clear', '--yes'],
        options: { env: { CACHE_TYPE: type } },
      })),
      { label: 'get', argv: ['get', 'k'], options: { env: { CACHE_TYPE: 'SimpleCache' } } },
      { label: 'stats', argv: ['stats'], options: { env: { CACHE_TYPE: 'SimpleCache' } } },
      { label: '--config', argv: ['--config', jsonConfig, 'clear', '--yes'], options: {} },
    ]
    for (const { label, argv, options } of runs) {
      const run = await cli(argv, options)
      assert.equal(run.code, 2, label)
      assert.equal(run.stdout, '', label)
      assert.match(run.stderr, /keeps its entries in the memory of the app's own process/, label)
      assert.match(run.stderr, /Run it against a shared backend/, label)
      assertNoStack(run)
    }
  })

  test('the progress bar fills with the count and redraws at most every 100 ms', () => {
    const out = new Sink()
    let now = 0
    const bar = new ProgressBar(out, 5000, 'keys', 10, () => now)
    assert.equal(bar.render(1234), '[##........] 1234/5000 keys')
    bar.update(1000)
    now = 50
    bar.update(2000) // too soon: not drawn
    now = 200
    bar.update(5000)
    bar.finish()
    assert.equal(
      out.text,
      '\r[##........] 1000/5000 keys\r[##########] 5000/5000 keys\r[##########] 5000/5000 keys\n',
    )
  })
})

describe('cachette: SimpleCache through a module config file', () => {
  const dir = tempDir()
  const configPath = join(dir, 'cachette.config.mjs')
  const memoryModule = pathToFileURL(join(root, 'src/backends/memory/index.ts')).href
  // The module's SimpleCache is the one every in-process run uses (a module is
  // loaded once), so the test can seed it and see what the commands did.
  writeFileSync(
    configPath,
    [
      `import { SimpleCache } from ${JSON.stringify(memoryModule)}`,
      'export const backend = new SimpleCache({ threshold: 1000 })',
      'export default { CACHE_TYPE: () => backend, defaultTimeout: 60 }',
      '',
    ].join('\n'),
  )
  let backend: SimpleCache
  const run = (argv: string[], options: RunOptions = {}) =>
    cli(['--config', configPath, ...argv], options)

  before(async () => {
    backend = ((await import(pathToFileURL(configPath).href)) as { backend: SimpleCache }).backend
  })

  test('get prints a string as it is, other values with util.inspect to any depth', async () => {
    await backend.set('greeting', 'hello world')
    await backend.set('deep', { a: { b: { c: { d: [1, 2] } } } })
    const hit = await run(['get', 'greeting'])
    assert.deepEqual([hit.code, hit.stdout, hit.stderr], [0, 'hello world\n', ''])
    const deep = await run(['get', 'deep'])
    assert.equal(deep.code, 0)
    assert.match(deep.stdout, /d: \[ 1, 2 \]/)
    assert.doesNotMatch(deep.stdout, /\[Object\]/)
  })

  test('get --json prints JSON, with BigInt, Map and Set made readable', async () => {
    await backend.set('obj', { a: 1, when: new Date(0), n: 10n, m: new Map([['k', 1]]) })
    await backend.set('set', new Set([1, 2]))
    const obj = await run(['get', 'obj', '--json'])
    assert.equal(obj.code, 0)
    assert.deepEqual(JSON.parse(obj.stdout), {
      a: 1,
      when: '1970-01-01T00:00:00.000Z',
      n: '10',
      m: [['k', 1]],
    })
    assert.equal((await run(['get', 'set', '--json'])).stdout, '[1,2]\n')
  })

  test('a miss prints nothing on stdout, a message on stderr, and exits with 1', async () => {
    const miss = await run(['get', 'nothing-here'])
    assert.deepEqual([miss.code, miss.stdout], [1, ''])
    assert.match(miss.stderr, /no entry for "nothing-here"/)
  })

  test('keys lists live keys under the prefix, as lines or JSON', async () => {
    await backend.clear()
    await backend.setMany([
      ['user:1', 1],
      ['user:2', 2],
      ['post:1', 3],
    ])
    await backend.set('user:expired', 0, 0.001)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const users = await run(['keys', '--prefix', 'user:'])
    assert.equal(users.code, 0)
    assert.deepEqual(lines(users.stdout).sort(), ['user:1', 'user:2'])
    const all = await run(['keys', '--json'])
    assert.deepEqual((JSON.parse(all.stdout) as string[]).sort(), ['post:1', 'user:1', 'user:2'])
  })

  test('delete without a terminal and without --yes refuses with 2 and deletes nothing', async () => {
    await backend.set('keep', 1)
    const refused = await run(['delete', 'keep'])
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /refusing to delete keys without confirmation.*--yes/)
    assert.equal(await backend.get('keep'), 1)
  })

  test('delete on a terminal asks; "n" keeps the keys (exit 1), "y" deletes them', async () => {
    await backend.setMany([
      ['a', 1],
      ['b', 2],
    ])
    const no = await run(['delete', 'a', 'b'], { isTTY: true, input: 'n\n' })
    assert.equal(no.code, 1)
    assert.match(no.stderr, /Delete 2 keys \("a", "b"\) from SimpleCache\? \[y\/N\] /)
    assert.match(no.stderr, /cancelled; nothing was deleted/)
    assert.deepEqual(await backend.getMany(['a', 'b']), [1, 2])
    const nothing = await run(['delete', 'a'], { isTTY: true, input: '' })
    assert.equal(nothing.code, 1, 'no answer (end of input) is a no')
    const yes = await run(['delete', 'a', 'b'], { isTTY: true, input: 'YES\n' })
    assert.equal(yes.code, 0)
    assert.equal(yes.stdout, 'deleted 2 keys\n')
    assert.deepEqual(await backend.getMany(['a', 'b']), [undefined, undefined])
  })

  test('delete --yes of a missing key deletes the others and exits with 1', async () => {
    await backend.set('present', 1)
    const mixed = await run(['delete', 'present', 'absent', '-y'])
    assert.equal(mixed.code, 1)
    assert.equal(mixed.stdout, 'deleted 1 key\n')
    assert.match(mixed.stderr, /not found: "absent"/)
    assert.equal(await backend.has('present'), false)
  })

  test('stats shows the backend, its key count and entry count', async () => {
    await backend.clear()
    await backend.setMany([
      ['x', 1],
      ['y', 2],
    ])
    const stats = await run(['stats'])
    assert.equal(stats.code, 0)
    assert.match(stats.stdout, /^backend\s+SimpleCache$/m)
    assert.match(stats.stdout, /^keys\s+2$/m)
    assert.match(stats.stdout, /^entries\s+2$/m)
    assert.match(stats.stdout, /^threshold\s+1000$/m)
    const json = JSON.parse((await run(['stats', '--json'])).stdout) as Record<string, unknown>
    assert.deepEqual(json, { backend: 'SimpleCache', keys: 2, entries: 2, threshold: 1000 })
  })

  test('a TieredCache is listed and described through its second tier', async () => {
    const tieredPath = join(dir, 'tiered.config.mjs')
    const tieredModule = pathToFileURL(join(root, 'src/backends/tiered/index.ts')).href
    writeFileSync(
      tieredPath,
      [
        `import { TieredCache } from ${JSON.stringify(tieredModule)}`,
        `import { backend } from ${JSON.stringify(pathToFileURL(configPath).href)}`,
        'export default { CACHE_TYPE: () => new TieredCache({ second: backend }) }',
        '',
      ].join('\n'),
    )
    await backend.clear()
    await backend.setMany([
      ['t:1', 1],
      ['t:2', 2],
      ['u:1', 3],
    ])
    const keys = await cli(['keys', '--prefix', 't:', '--config', tieredPath])
    assert.equal(keys.code, 0, keys.stderr)
    assert.deepEqual(lines(keys.stdout).sort(), ['t:1', 't:2'])
    const stats = await cli(['stats', '--json', '--config', tieredPath])
    assert.equal(stats.code, 0, stats.stderr)
    assert.deepEqual(JSON.parse(stats.stdout), {
      backend: 'TieredCache',
      'second tier': 'SimpleCache',
      keys: 3,
      entries: 3,
      threshold: 1000,
    })
    const cleared = await cli(['clear', '-p', 't:', '-y', '--config', tieredPath])
    assert.equal(cleared.code, 0, cleared.stderr)
    assert.deepEqual(await backend.getMany(['t:1', 't:2', 'u:1']), [undefined, undefined, 3])
  })

  test('clear --prefix deletes only that prefix; clear deletes everything', async () => {
    await backend.clear()
    await backend.setMany([
      ['tmp:1', 1],
      ['tmp:2', 2],
      ['tmpx', 3],
      ['other', 4],
    ])
    const some = await run(['clear', '--prefix', 'tmp:', '--yes'])
    assert.equal(some.code, 0)
    assert.equal(some.stdout, 'deleted 2 keys starting with "tmp:"\n')
    assert.deepEqual(await backend.getMany(['tmp:1', 'tmp:2', 'tmpx', 'other']), [
      undefined,
      undefined,
      3,
      4,
    ])
    const none = await run(['clear', '--prefix', 'tmp:', '--yes'])
    assert.deepEqual([none.code, none.stdout], [0, 'no keys starting with "tmp:"\n'])
    const all = await run(['clear'], { isTTY: true, input: 'y\n' })
    assert.equal(all.code, 0)
    assert.match(all.stderr, /Remove every entry of SimpleCache\? \[y\/N\]/)
    assert.equal(backend.size, 0)
  })
})

describe('cachette: configuration files', () => {
  const dir = tempDir()

  test('a .json file with camelCase keys, and one with CACHE_* keys', async () => {
    const fsDir = join(dir, 'fs-json')
    writeFileSync(join(dir, 'camel.json'), JSON.stringify({ type: 'FileSystemCache', dir: fsDir }))
    await new FileSystemCache({ dir: fsDir }).set('k', 'from json')
    const camel = await cli(['get', 'k', '--config', 'camel.json'], { cwd: dir })
    assert.deepEqual([camel.code, camel.stdout], [0, 'from json\n'])
    writeFileSync(
      join(dir, 'flask.json'),
      JSON.stringify({ CACHE_TYPE: 'FileSystemCache', CACHE_DIR: fsDir }),
    )
    const flask = await cli(['get', 'k', '-c', join(dir, 'flask.json')])
    assert.deepEqual([flask.code, flask.stdout], [0, 'from json\n'])
  })

  test('the environment is not read when a file is given', async () => {
    const fsDir = join(dir, 'fs-only-file')
    writeFileSync(join(dir, 'only.json'), JSON.stringify({ type: 'filesystem', dir: fsDir }))
    const run = await cli(['stats', '--config', join(dir, 'only.json')], {
      env: { CACHE_TYPE: 'RedisCache', CACHE_DEFAULT_TIMEOUT: 'abc' },
    })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /^backend\s+FileSystemCache$/m)
  })

  test('a .cjs module, and a default export that is a function', async () => {
    const fsDir = join(dir, 'fs-cjs')
    writeFileSync(
      join(dir, 'config.cjs'),
      `module.exports = { CACHE_TYPE: 'FileSystemCache', CACHE_DIR: ${JSON.stringify(fsDir)} }\n`,
    )
    const cjs = await cli(['stats', '--json', '--config', join(dir, 'config.cjs')])
    assert.equal(cjs.code, 0, cjs.stderr)
    assert.equal((JSON.parse(cjs.stdout) as { dir: string }).dir, fsDir)
    writeFileSync(
      join(dir, 'factory.mjs'),
      `export default async () => ({ type: 'FileSystemCache', dir: ${JSON.stringify(fsDir)} })\n`,
    )
    const fn = await cli(['stats', '--json', '--config', join(dir, 'factory.mjs')])
    assert.equal(fn.code, 0, fn.stderr)
  })

  test('bad files exit with 2 and say why', async () => {
    writeFileSync(join(dir, 'broken.json'), '{ "CACHE_TYPE": ')
    writeFileSync(
      join(dir, 'unknown.json'),
      JSON.stringify({ CACHE_TYPE: 'simple', CACHE_DIRR: 1 }),
    )
    writeFileSync(join(dir, 'wrong.json'), JSON.stringify({ CACHE_TYPE: 'simple', threshold: -1 }))
    writeFileSync(join(dir, 'array.json'), '[]')
    writeFileSync(join(dir, 'config.yaml'), 'CACHE_TYPE: simple\n')
    const cases: [string, RegExp][] = [
      ['broken.json', /--config: .*broken\.json is not valid JSON/],
      ['unknown.json', /configuration error: CACHE_DIRR: unknown configuration key/],
      ['wrong.json', /threshold: expected a non-negative integer, got number -1/],
      ['array.json', /must hold .* an object of CACHE_\* or camelCase keys/],
      ['missing.json', /--config: cannot read .*missing\.json/],
      ['missing.mjs', /--config: cannot read .*missing\.mjs/],
      ['config.yaml', /expected a \.json, \.js, \.mjs, \.cjs or \.ts file/],
    ]
    for (const [file, message] of cases) {
      const run = await cli(['stats', '--config', join(dir, file)])
      assert.equal(run.code, 2, file)
      assert.match(run.stderr, message, file)
      assertNoStack(run)
    }
  })
})

describe('cachette: FileSystemCache', () => {
  const dir = tempDir()
  const env = { CACHE_TYPE: 'FileSystemCache', CACHE_DIR: dir }
  const library = new FileSystemCache({ dir, logger: silentLogger })

  test('get, delete and stats work on the directory', async () => {
    await library.set('a', 1)
    await library.set('b', { list: [1, 2] })
    const a = await cli(['get', 'a'], { env })
    assert.deepEqual([a.code, a.stdout], [0, '1\n'])
    const stats = await cli(['stats'], { env })
    assert.equal(stats.code, 0)
    assert.match(stats.stdout, /^entries\s+2$/m)
    assert.match(stats.stdout, new RegExp(`^dir\\s+${dir}$`, 'm'))
    assert.doesNotMatch(stats.stdout, /^keys/m, 'cannot count keys it cannot list')
    const del = await cli(['delete', 'a', '--yes'], { env })
    assert.equal(del.code, 0)
    assert.equal(await library.get('a'), undefined)
  })

  test('keys and clear --prefix refuse with 2: the file names are hashes; nothing is deleted', async () => {
    await library.set('p:1', 1)
    for (const argv of [['keys'], ['clear', '--prefix', 'p:', '--yes']]) {
      const run = await cli(argv, { env })
      assert.equal(run.code, 2, argv.join(' '))
      assert.match(run.stderr, /FileSystemCache cannot list keys/)
    }
    assert.equal(await library.get('p:1'), 1)
  })

  test('clear --yes empties the directory', async () => {
    await library.set('c', 3)
    const run = await cli(['clear', '--yes'], { env })
    assert.equal(run.code, 0)
    assert.equal(run.stdout, `cleared FileSystemCache in ${dir}\n`)
    assert.equal(await library.get('c'), undefined)
    assert.equal(await library.get('p:1'), undefined)
  })
})

describe('cachette: Redis', () => {
  const redis = life.lazily(
    () => startRedis(),
    (s) => s.stop(),
  )
  let env: Record<string, string>
  let cache: Cache
  let neighbour: Cache
  const countUnder = async (prefix: string): Promise<number> => {
    let n = 0
    for await (const _ of (cache.backend.keys as (p: string) => AsyncIterable<string>).call(
      cache.backend,
      prefix,
    ))
      n++
    return n
  }
  const seed = async (prefix: string, n: number): Promise<void> => {
    const entries: [string, number][] = Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i])
    for (let i = 0; i < entries.length; i += 1000) {
      await cache.setMany(entries.slice(i, i + 1000))
    }
  }

  before(async () => {
    const server = await redis()
    env = {
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_HOST: '127.0.0.1',
      CACHE_REDIS_PORT: String(server.port),
      CACHE_KEY_PREFIX: 'cli:',
    }
    const config = { ...env, CACHE_RAISE_ERRORS: 'true', CACHE_REDIS_PORT: String(server.port) }
    cache = life.track(Cache.fromEnv(config, { logger: silentLogger }))
    neighbour = life.track(
      Cache.fromEnv({ ...config, CACHE_KEY_PREFIX: 'other:' }, { logger: silentLogger }),
    )
    await seed('p:', 3000)
    await seed('keep:', 200)
    await cache.set('px', 'not under p:')
    await neighbour.set('p:1', 'another app')
  })

  test('keys --prefix lists exactly the keys under it, without CACHE_KEY_PREFIX', async () => {
    const all = await cli(['keys', '--prefix', 'p:'], { env })
    assert.equal(all.code, 0, all.stderr)
    const listed = lines(all.stdout)
    assert.equal(listed.length, 3000)
    assert.deepEqual(new Set(listed), new Set(Array.from({ length: 3000 }, (_, i) => `p:${i}`)))
    // p:1, p:10-19, p:100-199, p:1000-1999
    const ones = await cli(['keys', '--prefix', 'p:1'], { env })
    assert.equal(lines(ones.stdout).length, 1111)
    const json = await cli(['keys', '--prefix', 'keep:', '--json'], { env })
    assert.equal((JSON.parse(json.stdout) as string[]).length, 200)
  })

  test('glob characters in the prefix are matched literally', async () => {
    await cache.setMany([
      ['star*1', 1],
      ['starx', 2],
      ['q?[a]', 3],
      ['qz[a]', 4],
    ])
    const star = await cli(['keys', '--prefix', 'star*'], { env })
    assert.deepEqual(lines(star.stdout), ['star*1'])
    const question = await cli(['keys', '--prefix', 'q?['], { env })
    assert.deepEqual(lines(question.stdout), ['q?[a]'])
    await cache.deleteMany(['star*1', 'starx', 'q?[a]', 'qz[a]'])
  })

  test('clear --prefix without a terminal and without --yes refuses with 2, deleting nothing', async () => {
    const run = await cli(['clear', '--prefix', 'p:'], { env })
    assert.equal(run.code, 2)
    assert.match(run.stderr, /refusing to clear the cache without confirmation/)
    assert.equal(await countUnder('p:'), 3000)
  })

  test('clear --prefix on a terminal asks with the count; declining deletes nothing', async () => {
    const run = await cli(['clear', '--prefix', 'p:'], { env, isTTY: true, input: 'no\n' })
    assert.equal(run.code, 1)
    assert.match(
      run.stderr,
      /Delete 3000 keys starting with "p:" from RedisCache \(key prefix "cli:"\)\? \[y\/N\]/,
    )
    assert.equal(await countUnder('p:'), 3000)
  })

  test('clear --prefix --yes deletes exactly those keys, with a progress bar on a terminal', async () => {
    const run = await cli(['clear', '--prefix', 'p:', '--yes'], { env, isTTY: true })
    assert.equal(run.code, 0, run.stderr)
    assert.ok(run.stderr.includes(`\r[${'#'.repeat(30)}] 3000/3000 keys\n`), run.stderr)
    assert.equal(run.stdout, 'deleted 3000 keys starting with "p:"\n')
    assert.equal(await countUnder('p:'), 0)
    assert.deepEqual(await cache.getMany(['p:0', 'p:1500', 'p:2999']), [
      undefined,
      undefined,
      undefined,
    ])
    assert.equal(await countUnder('keep:'), 200)
    assert.equal(await cache.get('px'), 'not under p:')
    assert.equal(await neighbour.get('p:1'), 'another app', "another prefix's keys stay")
  })

  test('without a terminal: no progress bar, a summary line; batches of --batch-size', async () => {
    await seed('batch:', 50)
    const run = await cli(['clear', '-p', 'batch:', '-y', '--batch-size', '7'], { env })
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stderr, '')
    assert.equal(run.stdout, 'deleted 50 keys starting with "batch:"\n')
    assert.equal(await countUnder('batch:'), 0)
  })

  test('get: a hit prints the value (exit 0), a miss exits with 1', async () => {
    await cache.set('doc', { title: 'hi', tags: ['a'] })
    const hit = await cli(['get', 'doc', '--json'], { env })
    assert.deepEqual([hit.code, JSON.parse(hit.stdout)], [0, { title: 'hi', tags: ['a'] }])
    const number = await cli(['get', 'keep:7'], { env })
    assert.deepEqual([number.code, number.stdout], [0, '7\n'])
    const miss = await cli(['get', 'p:5'], { env })
    assert.deepEqual([miss.code, miss.stdout], [1, ''])
  })

  test('delete removes the keys given', async () => {
    const run = await cli(['delete', 'keep:1', 'keep:2', '--yes'], { env })
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(await cache.getMany(['keep:1', 'keep:2', 'keep:3']), [undefined, undefined, 3])
  })

  test('stats shows Redis figures and the key count under the prefix', async () => {
    const run = await cli(['stats'], { env })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /^backend\s+RedisCache$/m)
    assert.match(run.stdout, /^key prefix\s+"cli:"$/m)
    assert.match(run.stdout, /^redis_version\s+\d+\.\d+/m)
    assert.match(run.stdout, /^used_memory_human\s+[\d.]+[BKMG]$/m)
    const json = JSON.parse((await cli(['stats', '--json'], { env })).stdout) as Record<
      string,
      number
    >
    assert.equal(json.keys, await countUnder(''))
    // The database also holds the other prefix's key.
    assert.equal(json.db0_keys, (json.keys as number) + 1)
    assert.equal(typeof json.keyspace_hits, 'number')
  })

  test('clear on a terminal, confirmed, removes the whole prefix and nothing else', async () => {
    const run = await cli(['clear'], { env, isTTY: true, input: 'y\n' })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, /Remove every entry of RedisCache \(key prefix "cli:"\)\?/)
    assert.equal(await countUnder(''), 0)
    assert.equal(await neighbour.get('p:1'), 'another app')
  })

  test('Redis down: exit 3 within a couple of seconds, not a hang, and no stack trace', async () => {
    const server = await startRedis()
    const port = String(server.port)
    await server.stop()
    for (const argv of [['get', 'k'], ['keys'], ['stats'], ['clear', '--prefix', 'p', '--yes']]) {
      const run = await cli(argv, { env: { ...env, CACHE_REDIS_PORT: port } })
      assert.equal(run.code, 3, `${argv.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, /backend error: .*not connected to Redis/)
      assertNoStack(run)
      assert.ok(run.ms < 4000, `${argv.join(' ')} took ${run.ms} ms`)
    }
  })
})

describe('cachette: Memcached', () => {
  const memcached = life.lazily(
    () => startMemcached(),
    (s) => s.stop(),
  )
  const USER = 'cli'
  const PASSWORD = 'cli pass'
  const sasl = life.lazily(
    () => startMemcached({ sasl: { username: USER, password: PASSWORD } }),
    (s) => s.stop(),
  )

  test('stats reports the server figures: curr_items, get_hits, get_misses, bytes', async () => {
    const server = await memcached()
    const env = {
      CACHE_TYPE: 'MemcachedCache',
      CACHE_MEMCACHED_SERVERS: server.address,
      CACHE_KEY_PREFIX: 'mc_',
    }
    const cache = life.track(Cache.fromEnv(env, { logger: silentLogger }))
    await cache.setMany({ a: 1, b: 2, c: 3 })
    await cache.get('a')
    await cache.get('missing')
    const json = await cli(['stats', '--json'], { env })
    assert.equal(json.code, 0, json.stderr)
    const figures = JSON.parse(json.stdout) as Record<string, number | string>
    assert.equal(figures.backend, 'MemcachedCache')
    assert.equal(figures.servers, 1)
    assert.equal(figures.curr_items, await itemCount(server.port))
    assert.ok((figures.curr_items as number) >= 3)
    assert.ok((figures.get_hits as number) >= 1)
    assert.ok((figures.get_misses as number) >= 1)
    assert.ok((figures.bytes as number) > 0)
    assert.equal(figures.keys, undefined, 'Memcached cannot count keys')
    const text = await cli(['stats'], { env })
    assert.match(text.stdout, /^curr_items\s+\d+$/m)
  })

  test('keys and clear --prefix refuse with 2 and say how to clear instead', async () => {
    const server = await memcached()
    const env = {
      CACHE_TYPE: 'MemcachedCache',
      CACHE_MEMCACHED_SERVERS: server.address,
      CACHE_KEY_PREFIX: 'mc2_',
    }
    const cache = life.track(Cache.fromEnv(env, { logger: silentLogger }))
    await cache.set('p1', 'stays')
    const message = 'Memcached cannot list keys; use `cachette clear` to clear the whole namespace'
    for (const argv of [
      ['keys', '--prefix', 'p'],
      ['clear', '--prefix', 'p', '--yes'],
    ]) {
      const run = await cli(argv, { env })
      assert.equal(run.code, 2, argv.join(' '))
      assert.ok(run.stderr.includes(message), run.stderr)
    }
    assert.equal(await cache.get('p1'), 'stays')
    const clear = await cli(['clear', '--yes'], { env })
    assert.equal(clear.code, 0, clear.stderr)
    assert.equal(await cache.get('p1'), undefined)
  })

  test('stats authenticates with SASL; wrong credentials exit with 3', async () => {
    const server = await sasl()
    const env = {
      CACHE_TYPE: 'SASLMemcachedCache',
      CACHE_MEMCACHED_SERVERS: server.address,
      CACHE_MEMCACHED_USERNAME: USER,
      CACHE_MEMCACHED_PASSWORD: PASSWORD,
      CACHE_KEY_PREFIX: 'sasl_',
    }
    const ok = await cli(['stats', '--json'], { env })
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(typeof (JSON.parse(ok.stdout) as Record<string, unknown>).curr_items, 'number')
    const wrong = await cli(['stats'], { env: { ...env, CACHE_MEMCACHED_PASSWORD: 'nope' } })
    assert.equal(wrong.code, 3)
    assert.match(wrong.stderr, /rejected the credentials of user "cli"/)
  })

  test('a server that is down: stats exits with 3', async () => {
    const server = await startMemcached()
    await server.stop()
    const run = await cli(['stats'], {
      env: { CACHE_TYPE: 'MemcachedCache', CACHE_MEMCACHED_SERVERS: server.address },
    })
    assert.equal(run.code, 3)
    assert.match(run.stderr, /backend error: memcached 127\.0\.0\.1:\d+/)
    assertNoStack(run)
  })
})

describe('cachette: the executable', () => {
  interface Exit {
    code: number
    stdout: string
    stderr: string
  }
  /** Runs a command line as a child process, stdin not a terminal. */
  function spawnCli(args: string[], env: Record<string, string>): Promise<Exit> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        args,
        { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
          resolve({ code, stdout, stderr })
        },
      )
      child.stdin?.end()
    })
  }
  const bin = ['--import', 'tsx', 'src/cli/bin.ts']

  test('reads CACHE_* variables and exits with each command’s code', async () => {
    const dir = tempDir()
    await new FileSystemCache({ dir }).set('k', 'value from disk')
    const env = { CACHE_TYPE: 'FileSystemCache', CACHE_DIR: dir }
    const hit = await spawnCli([...bin, 'get', 'k'], env)
    assert.deepEqual(hit, { code: 0, stdout: 'value from disk\n', stderr: '' })
    const miss = await spawnCli([...bin, 'get', 'nope'], env)
    assert.deepEqual([miss.code, miss.stdout], [1, ''])
    const refused = await spawnCli([...bin, 'clear'], env)
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /--yes/)
    assert.equal(await new FileSystemCache({ dir }).get('k'), 'value from disk')
    const bad = await spawnCli([...bin, 'stats'], { ...env, CACHE_THRESHOLD: 'many' })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /CACHE_THRESHOLD/)
    assertNoStack({ ...bad, ms: 0 })
    const cleared = await spawnCli([...bin, 'clear', '-y'], env)
    assert.equal(cleared.code, 0)
    assert.equal(await new FileSystemCache({ dir }).get('k'), undefined)
  })

  test('a stopped Redis: the process exits with 3 within a few seconds', async () => {
    const server = await startRedis()
    await server.stop()
    const start = Date.now()
    const run = await spawnCli([...bin, 'get', 'k'], {
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_HOST: '127.0.0.1',
      CACHE_REDIS_PORT: String(server.port),
    })
    assert.equal(run.code, 3, run.stderr)
    // It gives up instead of retrying forever; generous, as starting a process on a loaded machine is slow.
    assert.ok(Date.now() - start < 20_000, `took ${Date.now() - start} ms`)
  })

  test('the built bin (npm run build) is dist/cli.js, starts with a shebang and runs', async () => {
    const built = join(root, pkg.bin.cachette as string)
    assert.equal(pkg.bin.cachette, './dist/cli.js')
    assert.ok(existsSync(built), 'dist/cli.js exists: run npm run build first')
    assert.ok(readFileSync(built, 'utf8').startsWith('#!/usr/bin/env node\n'))
    const help = await spawnCli([built, '--help'], {})
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^Usage: cachette/)
    const dir = tempDir()
    const stats = await spawnCli([built, 'stats', '--json'], {
      CACHE_TYPE: 'FileSystemCache',
      CACHE_DIR: dir,
    })
    assert.equal(stats.code, 0, stats.stderr)
    assert.equal((JSON.parse(stats.stdout) as { backend: string }).backend, 'FileSystemCache')
    const refused = await spawnCli([built, 'clear', '--yes'], { CACHE_TYPE: 'SimpleCache' })
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /SimpleCache keeps its entries in the memory/)
  })
})
