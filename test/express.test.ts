import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, describe, test } from 'node:test'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import compression from 'compression'
import express, { type Express, type NextFunction, type Request, type Response } from 'express'
import {
  type CachedMiddleware,
  cached,
  type StoredView,
  setCacheTimeout,
} from '../src/frameworks/express/index.js'
import { createCachedMiddleware } from '../src/frameworks/express/middleware.js'
import {
  type BackendFactoryOptions,
  Cache,
  InvalidTimeoutError,
  SimpleCache,
} from '../src/index.js'
import {
  collectingLogger,
  DownBackend,
  fakeClock,
  type Reply,
  settledRequest,
  storesSettled,
} from './helpers.js'

// ---------------------------------------------------------------- harness

const servers: http.Server[] = []
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

/** Starts `app` on a free loopback port; closed after all tests. */
async function listen(app: Express | http.RequestListener): Promise<number> {
  const server = http.createServer(app as http.RequestListener)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  server.keepAliveTimeout = 100
  return (server.address() as AddressInfo).port
}

/** A pause of `ms` inside a handler (never a wait for the server: see {@link storesSettled}). */
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** One raw request, then the wait for the response's store decision (made after `finish`). */
const request = settledRequest()

function sha256hex(s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

function counter() {
  const c = { n: 0 }
  return c
}

function newCache(extra: Record<string, unknown> = {}): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', ...extra })
}

// ---------------------------------------------------------------- keys

describe('keys', () => {
  test('the default key is view/ + path (view//users/1) and the second request is a hit', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/users/:id', cache.cached(), (req, res) => {
      calls.n++
      res.send(`user ${req.params.id} #${calls.n}`)
    })
    const port = await listen(app)
    assert.equal((await request(port, '/users/1')).text, 'user 1 #1')
    assert.equal(await cache.has('view//users/1'), true)
    assert.equal((await request(port, '/users/1')).text, 'user 1 #1')
    assert.equal((await request(port, '/users/2')).text, 'user 2 #2')
    assert.equal(calls.n, 2)
  })

  test('the query string is ignored by default', async () => {
    const cache = newCache()
    const app = express()
    app.get('/search', cache.cached(), (req, res) => {
      res.send(`q=${String(req.query.q)}`)
    })
    const port = await listen(app)
    assert.equal((await request(port, '/search?q=a')).text, 'q=a')
    assert.equal((await request(port, '/search?q=b')).text, 'q=a')
    assert.equal(await cache.has('view//search'), true)
  })

  test('queryString: order of names ignored, a repeated name keeps its values in order, blank values kept, Flask key format', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/q', cache.cached({ queryString: true }), (req, res) => {
      calls.n++
      res.send(`${req.url} #${calls.n}`)
    })
    const port = await listen(app)
    const first = await request(port, '/q?b=2&a=1')
    assert.equal((await request(port, '/q?a=1&b=2')).text, first.text)
    assert.equal(calls.n, 1)
    // Python: str(tuple(sorted(request.args.items(multi=True)))) hashed with sha256.
    assert.equal(await cache.has(`view//q${sha256hex("(('a', '1'), ('b', '2'))")}`), true)

    // `?a=1&a=2` and `?a=2&a=1` are different lists to the app: two entries.
    const multi = await request(port, '/q?a=1&a=2')
    assert.notEqual((await request(port, '/q?a=2&a=1')).text, multi.text)
    assert.equal((await request(port, '/q?a=1&a=2')).text, multi.text)
    assert.notEqual((await request(port, '/q?a=1')).text, multi.text)
    assert.equal(calls.n, 4)
    assert.equal(await cache.has(`view//q${sha256hex("(('a', '1'), ('a', '2'))")}`), true)
    assert.equal(await cache.has(`view//q${sha256hex("(('a', '2'), ('a', '1'))")}`), true)

    const blank = await request(port, '/q?a=')
    assert.equal((await request(port, '/q?a')).text, blank.text)
    assert.equal(await cache.has(`view//q${sha256hex("(('a', ''),)")}`), true)
    // No query at all is its own entry.
    await request(port, '/q')
    assert.equal(await cache.has(`view//q${sha256hex('()')}`), true)
  })

  test('keyPrefix: %s string, fixed string, function', async () => {
    const cache = newCache()
    const app = express()
    app.get('/p/:x', cache.cached({ keyPrefix: 'page:%s' }), (req, res) => {
      res.send(req.params.x)
    })
    app.get('/fixed/:x', cache.cached({ keyPrefix: 'home' }), (req, res) => {
      res.send(req.params.x)
    })
    app.get(
      '/me',
      cache.cached<Request>({ keyPrefix: (req) => `me/${String(req.get('x-user'))}` }),
      (req, res) => {
        res.send(`hello ${String(req.get('x-user'))}`)
      },
    )
    const port = await listen(app)
    await request(port, '/p/1')
    assert.equal(await cache.has('page:/p/1'), true)
    assert.equal((await request(port, '/fixed/a')).text, 'a')
    assert.equal((await request(port, '/fixed/b')).text, 'a', 'a fixed key is shared by every path')
    assert.equal(await cache.has('home'), true)
    assert.equal((await request(port, '/me', { headers: { 'x-user': 'ann' } })).text, 'hello ann')
    assert.equal((await request(port, '/me', { headers: { 'x-user': 'bob' } })).text, 'hello bob')
    assert.equal((await request(port, '/me', { headers: { 'x-user': 'ann' } })).text, 'hello ann')
    assert.equal(await cache.has('me/ann'), true)
    assert.equal(await cache.has('me/bob'), true)
  })

  test('makeCacheKey replaces key building', async () => {
    const cache = newCache()
    const app = express()
    app.get(
      '/k',
      cache.cached({ makeCacheKey: (req) => `custom:${req.headers['x-v']}` }),
      (_req, res) => {
        res.send('k')
      },
    )
    const port = await listen(app)
    await request(port, '/k', { headers: { 'x-v': '7' } })
    assert.equal(await cache.has('custom:7'), true)
    assert.equal(await cache.has('view//k'), false)
  })

  test('sourceCheck appends the digest of the handlers after the middleware', async () => {
    const cache = newCache()
    const app = express()
    const handler = (_req: Request, res: Response) => {
      res.send('source')
    }
    app.get('/sc', cache.cached({ sourceCheck: true }), handler)
    const port = await listen(app)
    await request(port, '/sc')
    assert.equal(await cache.has(`view//sc${sha256hex(handler.toString())}`), true)
    assert.equal(await cache.has('view//sc'), false)
  })

  test('sourceCheck: two versions of the handler get two keys; app.use() outside a route warns once and caches without the digest', async () => {
    const cache = newCache()
    const v1 = (_req: Request, res: Response) => {
      res.send('version 1')
    }
    const v2 = (_req: Request, res: Response) => {
      res.send('version 2, changed')
    }
    for (const handler of [v1, v2]) {
      const app = express()
      app.get('/sc', cache.cached({ sourceCheck: true }), handler)
      await request(await listen(app), '/sc')
    }
    assert.notEqual(sha256hex(v1.toString()), sha256hex(v2.toString()))
    assert.equal(await cache.has(`view//sc${sha256hex(v1.toString())}`), true)
    assert.equal(await cache.has(`view//sc${sha256hex(v2.toString())}`), true)

    // Mounted with app.use(), no route is known when the cache runs: the
    // option (and the config flag) is not honoured, and says so once.
    for (const [extra, options] of [
      [{}, { sourceCheck: true }],
      [{ CACHE_SOURCE_CHECK: true }, {}],
    ] as const) {
      const logger = collectingLogger()
      const used = newCache({ ...extra, logger })
      const app = express()
      const calls = counter()
      app.use(used.cached(options))
      app.get('/u', (_req, res) => {
        calls.n++
        res.send(`used #${calls.n}`)
      })
      const port = await listen(app)
      assert.equal((await request(port, '/u')).text, 'used #1')
      assert.equal((await request(port, '/u')).text, 'used #1')
      assert.equal(calls.n, 1)
      assert.equal(await used.has('view//u'), true)
      assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
      assert.match(
        logger.warnings[0] as string,
        /sourceCheck.*\[CACHETTE_SOURCE_CHECK_UNAVAILABLE\]/,
      )
    }
  })
})

// ---------------------------------------------------------------- callbacks

describe('callbacks act on exactly true', () => {
  test('unless: true bypasses (no read, no write); truthy non-true does nothing', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    let verdict: unknown = true
    app.get('/u', cache.cached({ unless: () => verdict }), (_req, res) => {
      calls.n++
      res.send(`#${calls.n}`)
    })
    const port = await listen(app)
    await request(port, '/u')
    await request(port, '/u')
    assert.equal(calls.n, 2)
    assert.equal(await cache.has('view//u'), false)
    verdict = 1
    await request(port, '/u')
    assert.equal((await request(port, '/u')).text, '#3')
    // A cached entry is not read either when unless says true.
    verdict = Promise.resolve(true)
    assert.equal((await request(port, '/u')).text, '#4')
  })

  test('forcedUpdate: true skips the read and overwrites; "yes" does nothing', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    let force: unknown = false
    app.get('/f', cache.cached({ forcedUpdate: () => force }), (_req, res) => {
      calls.n++
      res.send(`#${calls.n}`)
    })
    const port = await listen(app)
    assert.equal((await request(port, '/f')).text, '#1')
    force = 'yes'
    assert.equal((await request(port, '/f')).text, '#1')
    force = true
    assert.equal((await request(port, '/f')).text, '#2')
    force = false
    assert.equal((await request(port, '/f')).text, '#2', 'the forced response was stored')
  })

  test('isStale gets the stored entry and the request; only true makes it a miss', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    const seen: { entry: StoredView; path: string }[] = []
    let stale: unknown = 1
    app.get(
      '/s',
      cache.cached<Request>({
        isStale: (entry, req) => {
          seen.push({ entry, path: req.path })
          return stale
        },
      }),
      (_req, res) => {
        calls.n++
        res.send(`#${calls.n}`)
      },
    )
    const port = await listen(app)
    await request(port, '/s')
    assert.equal(seen.length, 0, 'not called on a miss')
    assert.equal((await request(port, '/s')).text, '#1')
    assert.equal(seen[0]?.entry.status, 200)
    assert.equal(seen[0]?.entry.body.toString(), '#1')
    assert.equal(seen[0]?.path, '/s')
    stale = true
    assert.equal((await request(port, '/s')).text, '#2')
    stale = false
    assert.equal((await request(port, '/s')).text, '#2')
  })

  test('responseFilter: falsy keeps the response out of the cache, it is still sent', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get(
      '/r/:n',
      cache.cached({ responseFilter: (entry) => entry.body.length < 5 }),
      (req, res) => {
        calls.n++
        res.send('x'.repeat(Number(req.params.n)))
      },
    )
    const port = await listen(app)
    assert.equal((await request(port, '/r/10')).text, 'x'.repeat(10))
    assert.equal(await cache.has('view//r/10'), false)
    await request(port, '/r/10')
    assert.equal(calls.n, 2)
    await request(port, '/r/2')
    await request(port, '/r/2')
    assert.equal(calls.n, 3)
  })
})

// ---------------------------------------------------------------- replay

describe('replay', () => {
  test('hit header: hit_cache: True on hits only; a string names the header', async () => {
    const cache = newCache()
    const app = express()
    app.get('/h', cache.cached({ responseHitIndication: true }), (_req, res) => {
      res.send('h')
    })
    app.get('/x', cache.cached({ responseHitIndication: 'x-cache' }), (_req, res) => {
      res.send('x')
    })
    app.get('/none', cache.cached(), (_req, res) => {
      res.send('n')
    })
    const port = await listen(app)
    assert.equal((await request(port, '/h')).headers.hit_cache, undefined)
    assert.equal((await request(port, '/h')).headers.hit_cache, 'True')
    assert.equal((await request(port, '/x')).headers['x-cache'], undefined)
    assert.equal((await request(port, '/x')).headers['x-cache'], 'True')
    await request(port, '/none')
    assert.equal((await request(port, '/none')).headers.hit_cache, undefined)
  })

  test("a hit answers a matching If-None-Match or If-Modified-Since with Express's own 304", async () => {
    const cache = newCache()
    const app = express()
    const handler = (_req: Request, res: Response) => {
      res.set('X-Custom', 'kept').set('Cache-Control', 'max-age=60').send('hello world')
    }
    const modified = 'Tue, 01 Dec 2026 10:00:00 GMT'
    app.get('/plain', handler)
    app.get('/cached', cache.cached({ responseHitIndication: true }), handler)
    app.get('/dated', cache.cached(), (_req, res) => {
      res.set('Last-Modified', modified).send('dated')
    })
    const port = await listen(app)
    const first = await request(port, '/cached')
    const etag = first.headers.etag as string
    assert.match(etag, /^W\/"/, 'Express added its ETag')
    for (const path of ['/plain', '/cached']) {
      // The miss (and the uncached route) is Express's own; then the hits.
      for (let i = 0; i < 2; i++) {
        const r = await request(port, path, { headers: { 'if-none-match': etag } })
        assert.equal(r.status, 304, `${path} #${i}`)
        assert.equal(r.body.length, 0)
        assert.equal(r.headers.etag, etag)
        assert.equal(r.headers['x-custom'], 'kept')
        assert.equal(r.headers['cache-control'], 'max-age=60')
        assert.equal(r.headers['content-type'], undefined)
        assert.equal(r.headers['content-length'], undefined)
      }
    }
    const hit = await request(port, '/cached', { headers: { 'if-none-match': `"other", ${etag}` } })
    assert.deepEqual([hit.status, hit.headers.hit_cache], [304, 'True'])
    const head = await request(port, '/cached', {
      method: 'HEAD',
      headers: { 'if-none-match': etag },
    })
    assert.equal(head.status, 304)
    // What Express answers 200 to, a hit answers 200 to.
    for (const headers of <Record<string, string>[]>[
      { 'if-none-match': '"other"' },
      { 'if-none-match': etag, 'cache-control': 'no-cache' },
      { 'if-modified-since': 'Tue, 01 Dec 2026 10:00:00 GMT' },
      {},
    ]) {
      for (const path of ['/plain', '/cached']) {
        const r = await request(port, path, { headers })
        assert.equal(r.status, 200, `${path} ${JSON.stringify(headers)}`)
        assert.equal(r.text, 'hello world')
      }
    }
    await request(port, '/dated')
    const since = await request(port, '/dated', { headers: { 'if-modified-since': modified } })
    assert.equal(since.status, 304)
    const older = await request(port, '/dated', {
      headers: { 'if-modified-since': 'Mon, 30 Nov 2026 10:00:00 GMT' },
    })
    assert.deepEqual([older.status, older.text], [200, 'dated'])
  })

  test('status, headers and body are replayed (201, custom header, content type)', async () => {
    const cache = newCache()
    const app = express()
    app.get('/created', cache.cached(), (_req, res) => {
      res
        .status(201)
        .set('X-Custom', 'yes')
        .append('X-Multi', ['a', 'b'])
        .type('text/csv')
        .send('a,b\n1,2\n')
    })
    const port = await listen(app)
    const miss = await request(port, '/created')
    const hit = await request(port, '/created')
    for (const r of [miss, hit]) {
      assert.equal(r.status, 201)
      assert.equal(r.headers['x-custom'], 'yes')
      assert.equal(r.headers['x-multi'], 'a, b')
      assert.equal(r.headers['content-type'], 'text/csv; charset=utf-8')
      assert.equal(r.headers['content-length'], '8')
      assert.equal(r.text, 'a,b\n1,2\n')
    }
    assert.equal(hit.headers.etag, miss.headers.etag)
  })

  test('a random 64 KiB binary body is replayed byte for byte', async () => {
    const cache = newCache()
    const app = express()
    const blob = randomBytes(64 * 1024)
    const calls = counter()
    app.get('/bin', cache.cached(), (_req, res) => {
      calls.n++
      res.type('application/octet-stream').send(blob)
    })
    const port = await listen(app)
    assert.ok((await request(port, '/bin')).body.equals(blob))
    const hit = await request(port, '/bin')
    assert.ok(hit.body.equals(blob))
    assert.equal(hit.headers['content-type'], 'application/octet-stream')
    assert.equal(calls.n, 1)
  })

  test('res.json', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/j', cache.cached(), (_req, res) => {
      calls.n++
      res.json({ a: [1, 2], b: 'é' })
    })
    const port = await listen(app)
    await request(port, '/j')
    const hit = await request(port, '/j')
    assert.deepEqual(JSON.parse(hit.text), { a: [1, 2], b: 'é' })
    assert.equal(hit.headers['content-type'], 'application/json; charset=utf-8')
    assert.equal(calls.n, 1)
  })

  test('res.write several times, then res.end', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/w', cache.cached(), (_req, res) => {
      calls.n++
      res.setHeader('Content-Type', 'text/plain')
      res.write('one,')
      res.write(Buffer.from('two,'))
      res.write('thr', 'utf8')
      res.end('ee')
    })
    const port = await listen(app)
    assert.equal((await request(port, '/w')).text, 'one,two,three')
    const hit = await request(port, '/w')
    assert.equal(hit.text, 'one,two,three')
    assert.equal(hit.headers['content-length'], '13')
    assert.equal(calls.n, 1)
  })

  test('a stream piped into res', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/stream', cache.cached(), (_req, res) => {
      calls.n++
      res.type('text/plain')
      Readable.from([Buffer.from('al'), Buffer.from('pha'), Buffer.from('-beta')]).pipe(res)
    })
    const port = await listen(app)
    assert.equal((await request(port, '/stream')).text, 'alpha-beta')
    assert.equal((await request(port, '/stream')).text, 'alpha-beta')
    assert.equal(calls.n, 1)
  })

  test('res.sendFile', async () => {
    const cache = newCache()
    const app = express()
    const dir = await mkdtemp(join(tmpdir(), 'cachette-express-'))
    after(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'page.html')
    await writeFile(file, '<h1>from disk</h1>')
    const calls = counter()
    app.get('/file', cache.cached(), (_req, res, next) => {
      calls.n++
      res.sendFile(file, (err) => {
        if (err) next(err)
      })
    })
    const port = await listen(app)
    await request(port, '/file')
    await writeFile(file, '<h1>changed</h1>')
    const hit = await request(port, '/file')
    assert.equal(hit.text, '<h1>from disk</h1>')
    assert.equal(hit.headers['content-type'], 'text/html; charset=utf-8')
    assert.equal(calls.n, 1)
  })

  test('HEAD is answered from a stored GET; a HEAD miss stores nothing', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/head/:x', cache.cached({ responseHitIndication: true }), (_req, res) => {
      calls.n++
      res.type('text/plain').send('body of get')
    })
    const port = await listen(app)
    await request(port, '/head/a')
    const head = await request(port, '/head/a', { method: 'HEAD' })
    assert.equal(calls.n, 1)
    assert.equal(head.status, 200)
    assert.equal(head.body.length, 0)
    assert.equal(head.headers['content-length'], String('body of get'.length))
    assert.equal(head.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(head.headers.hit_cache, 'True')

    await request(port, '/head/b', { method: 'HEAD' })
    assert.equal(calls.n, 2)
    assert.equal(await cache.has('view//head/b'), false)
  })

  test('headers set by outer middleware before the cache are not stored (recomputed per request)', async () => {
    const cache = newCache()
    const app = express()
    let id = 0
    app.use((_req, res, next) => {
      res.setHeader('X-Request-Id', String(++id))
      next()
    })
    app.get('/outer', cache.cached(), (_req, res) => {
      res.set('X-Inner', 'stored').send('o')
    })
    const port = await listen(app)
    assert.equal((await request(port, '/outer')).headers['x-request-id'], '1')
    const hit = await request(port, '/outer')
    assert.equal(hit.headers['x-request-id'], '2')
    assert.equal(hit.headers['x-inner'], 'stored')
  })

  test('plain node:http (Connect-style) without Express', async () => {
    const cache = newCache()
    const mw = cache.cached({ responseHitIndication: true })
    const calls = counter()
    const port = await listen((req: IncomingMessage, res: ServerResponse) => {
      mw(req, res, (err) => {
        if (err) {
          res.statusCode = 500
          res.end()
          return
        }
        calls.n++
        res.setHeader('Content-Type', 'text/plain')
        res.end('plain')
      })
    })
    await request(port, '/plain?x=1')
    const hit = await request(port, '/plain?x=2')
    assert.equal(hit.text, 'plain')
    assert.equal(hit.headers.hit_cache, 'True')
    assert.equal(calls.n, 1)
    assert.equal(await cache.has('view//plain'), true)
  })
})

// ---------------------------------------------------------------- what is stored

describe('what is stored', () => {
  test('404 and 500 are not stored by default; cacheStatuses allows them', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    const handler = (req: Request, res: Response) => {
      calls.n++
      res.status(Number(req.params.status)).send(`status ${req.params.status} #${calls.n}`)
    }
    app.get('/d/:status', cache.cached(), handler)
    app.get('/list/:status', cache.cached({ cacheStatuses: [200, 404] }), handler)
    app.get('/fn/:status', cache.cached({ cacheStatuses: (s) => s >= 200 }), handler)
    const port = await listen(app)
    for (const s of ['404', '500', '206']) {
      await request(port, `/d/${s}`)
      assert.equal(await cache.has(`view//d/${s}`), false, s)
    }
    await request(port, '/d/204')
    assert.equal(await cache.has('view//d/204'), true)
    await request(port, '/list/404')
    const hit404 = await request(port, '/list/404')
    assert.equal(hit404.status, 404)
    assert.equal(await cache.has('view//list/404'), true)
    await request(port, '/list/500')
    assert.equal(await cache.has('view//list/500'), false)
    await request(port, '/fn/500')
    const hit500 = await request(port, '/fn/500')
    assert.equal(hit500.status, 500)
    assert.equal(await cache.has('view//fn/500'), true)
  })

  test('a response with Set-Cookie is never stored', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get(
      '/cookie',
      cache.cached({ cacheStatuses: () => true, allowAuthorized: true }),
      (_req, res) => {
        calls.n++
        res.cookie('session', `s${calls.n}`).send('with cookie')
      },
    )
    const port = await listen(app)
    const a = await request(port, '/cookie')
    const b = await request(port, '/cookie')
    assert.deepEqual(a.headers['set-cookie'], ['session=s1; Path=/'])
    assert.deepEqual(b.headers['set-cookie'], ['session=s2; Path=/'])
    assert.equal(calls.n, 2)
    assert.equal(await cache.has('view//cookie'), false)
  })

  test('Cache-Control: no-store or private is not stored', async () => {
    const cache = newCache()
    const app = express()
    app.get('/cc/:v', cache.cached(), (req, res) => {
      res
        .set('Cache-Control', req.params.v === 'public' ? 'public, max-age=60' : req.params.v)
        .send('cc')
    })
    const port = await listen(app)
    for (const v of ['no-store', 'private']) {
      await request(port, `/cc/${v}`)
      assert.equal(await cache.has(`view//cc/${v}`), false, v)
    }
    await request(port, '/cc/public')
    assert.equal(await cache.has('view//cc/public'), true)
  })

  test('Authorization bypasses the cache (no read, no write) unless allowAuthorized', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    const handler = (_req: Request, res: Response) => {
      calls.n++
      res.send(`#${calls.n}`)
    }
    app.get('/auth', cache.cached(), handler)
    app.get('/allowed', cache.cached({ allowAuthorized: true }), handler)
    const port = await listen(app)
    const auth = { authorization: 'Bearer secret' }
    await request(port, '/auth', { headers: auth })
    assert.equal(await cache.has('view//auth'), false)
    await request(port, '/auth') // anonymous: stored
    assert.equal(calls.n, 2)
    assert.equal((await request(port, '/auth', { headers: auth })).text, '#3', 'not read either')
    await request(port, '/allowed', { headers: auth })
    assert.equal((await request(port, '/allowed', { headers: auth })).text, '#4')
    assert.equal(await cache.has('view//allowed'), true)
  })

  test('only GET is stored; other methods bypass', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.all('/any', cache.cached(), (req, res) => {
      calls.n++
      res.send(`${req.method} #${calls.n}`)
    })
    const port = await listen(app)
    assert.equal((await request(port, '/any', { method: 'POST' })).text, 'POST #1')
    assert.equal(await cache.has('view//any'), false)
    assert.equal((await request(port, '/any', { method: 'GET' })).text, 'GET #2')
    assert.equal((await request(port, '/any', { method: 'PUT' })).text, 'PUT #3')
    assert.equal((await request(port, '/any', { method: 'GET' })).text, 'GET #2')
  })

  test('maxBodySize: a larger body is passed through and not stored', async () => {
    const cache = newCache()
    const app = express()
    app.get('/big/:n', cache.cached({ maxBodySize: 100 }), (req, res) => {
      const n = Number(req.params.n)
      res.type('text/plain')
      for (let i = 0; i < n; i += 10) res.write('0123456789')
      res.end()
    })
    const port = await listen(app)
    assert.equal((await request(port, '/big/1000')).body.length, 1000)
    assert.equal(await cache.has('view//big/1000'), false)
    await request(port, '/big/100')
    assert.equal(await cache.has('view//big/100'), true)
  })

  test('a handler that fails is never stored and its error reaches Express unchanged', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    const errors: unknown[] = []
    const boom = new Error('boom')
    const opts = { cacheStatuses: () => true }
    app.get('/throw', cache.cached(opts), () => {
      calls.n++
      throw boom
    })
    app.get('/next', cache.cached(opts), (_req, _res, next) => {
      calls.n++
      next(boom)
    })
    app.get('/reject', cache.cached(opts), async () => {
      calls.n++
      await settle(1)
      throw boom
    })
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(err)
      res.status(200).send('handled')
    })
    const port = await listen(app)
    for (const path of ['/throw', '/next', '/reject']) {
      assert.equal((await request(port, path)).text, 'handled')
      assert.equal((await request(port, path)).text, 'handled')
      assert.equal(await cache.has(`view/${path}`), false, path)
    }
    assert.equal(calls.n, 6)
    assert.equal(errors.length, 6)
    assert.ok(errors.every((e) => e === boom))
  })

  test('a response the client aborted mid-way is not stored', async () => {
    const cache = newCache()
    const app = express()
    let done: () => void = () => {}
    const finished = new Promise<void>((r) => {
      done = r
    })
    app.get('/slow', cache.cached(), async (_req, res) => {
      res.type('text/plain')
      res.write('first part,')
      await settle(100)
      res.end('second part')
      done()
    })
    const port = await listen(app)
    await new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })
    await finished
    await storesSettled()
    assert.equal(await cache.has('view//slow'), false)
  })
})

// ---------------------------------------------------------------- timeouts

describe('timeouts', () => {
  function clockedCache() {
    const clock = fakeClock()
    const cache = new Cache({
      CACHE_TYPE: (
        _app: unknown,
        _config: unknown,
        _args: unknown[],
        options: BackendFactoryOptions,
      ) => new SimpleCache({ ...options, clock: clock.now }),
    })
    return { cache, clock }
  }

  test('setCacheTimeout overrides the route timeout; 0 falls back to it', async () => {
    const { cache, clock } = clockedCache()
    const app = express()
    const calls: Record<string, number> = {}
    const handler = (t: number | string | undefined) => (req: Request, res: Response) => {
      calls[req.path] = (calls[req.path] ?? 0) + 1
      if (t !== undefined) setCacheTimeout(res, t)
      res.send(`${req.path} #${calls[req.path]}`)
    }
    app.get('/short', cache.cached({ timeout: 100 }), handler(5))
    app.get('/string', cache.cached({ timeout: 100 }), handler('1m'))
    app.get('/zero', cache.cached({ timeout: 100 }), handler(0))
    app.get('/route', cache.cached({ timeout: '100s' }), handler(undefined))
    const port = await listen(app)
    for (const p of ['/short', '/string', '/zero', '/route']) await request(port, p)
    clock.advance(6_000)
    for (const p of ['/short', '/string', '/zero', '/route']) await request(port, p)
    assert.deepEqual(calls, { '/short': 2, '/string': 1, '/zero': 1, '/route': 1 })
    clock.advance(60_000)
    for (const p of ['/string', '/zero', '/route']) await request(port, p)
    assert.deepEqual(calls, { '/short': 2, '/string': 2, '/zero': 1, '/route': 1 })
    clock.advance(40_000)
    for (const p of ['/zero', '/route']) await request(port, p)
    assert.deepEqual(calls, { '/short': 2, '/string': 2, '/zero': 2, '/route': 2 })
  })

  test('middleware.cacheTimeout is read at store time and assignable', async () => {
    const { cache, clock } = clockedCache()
    const app = express()
    const calls = counter()
    const mw = cache.cached({ timeout: 10 })
    assert.equal(mw.cacheTimeout, 10)
    mw.cacheTimeout = '1h'
    assert.equal(mw.cacheTimeout, 3600)
    app.get('/t', mw, (_req, res) => {
      calls.n++
      res.send('t')
    })
    const port = await listen(app)
    await request(port, '/t')
    clock.advance(3_000_000)
    await request(port, '/t')
    assert.equal(calls.n, 1)
    clock.advance(700_000)
    await request(port, '/t')
    assert.equal(calls.n, 2)
    assert.throws(() => {
      mw.cacheTimeout = -1
    }, InvalidTimeoutError)
  })
})

// ---------------------------------------------------------------- compression

describe('compression', () => {
  const TEXT = 'the quick brown fox jumps over the lazy dog\n'.repeat(200)
  const gzip = { 'accept-encoding': 'gzip' }

  function decode(r: Reply): string {
    const ce = r.headers['content-encoding']
    if (ce === 'gzip') return gunzipSync(r.body).toString()
    if (ce === 'br') return brotliDecompressSync(r.body).toString()
    assert.equal(ce, undefined)
    return r.text
  }

  test('compression outside the cache: identity is stored, re-encoded per request', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.use(compression({ threshold: 0 }))
    app.get('/c', cache.cached({ responseHitIndication: true }), (_req, res) => {
      calls.n++
      res.type('text/plain').send(TEXT)
    })
    const port = await listen(app)
    const zipped = await request(port, '/c', { headers: gzip })
    assert.equal(zipped.headers['content-encoding'], 'gzip')
    assert.equal(decode(zipped), TEXT)
    const stored = (await cache.get('view//c')) as StoredView
    assert.equal(stored.body.toString(), TEXT, 'the identity bytes are stored')
    assert.equal(await cache.has('view//c|gzip'), false)

    const plain = await request(port, '/c')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.headers.hit_cache, 'True')
    assert.equal(plain.text, TEXT)
    const zippedHit = await request(port, '/c', { headers: gzip })
    assert.equal(zippedHit.headers.hit_cache, 'True')
    assert.equal(zippedHit.headers['content-encoding'], 'gzip')
    assert.equal(decode(zippedHit), TEXT)
    assert.equal(calls.n, 1)
  })

  test('compression inside the cache: an encoded entry only goes to clients that accept it', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get(
      '/c',
      cache.cached({ responseHitIndication: true }),
      compression({ threshold: 0 }),
      (_req, res) => {
        calls.n++
        res.type('text/plain').send(TEXT)
      },
    )
    const port = await listen(app)
    const zipped = await request(port, '/c', { headers: gzip })
    assert.equal(zipped.headers['content-encoding'], 'gzip')
    assert.equal(decode(zipped), TEXT)
    assert.equal(await cache.has('view//c|gzip'), true)
    assert.equal(await cache.has('view//c'), false)

    // A client that did not ask for gzip must never get the gzip entry.
    const plain = await request(port, '/c')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.headers.hit_cache, undefined)
    assert.equal(plain.text, TEXT)
    assert.equal(calls.n, 2)
    assert.equal(await cache.has('view//c'), true)

    const zippedHit = await request(port, '/c', { headers: gzip })
    assert.equal(zippedHit.headers.hit_cache, 'True')
    assert.equal(zippedHit.headers['content-encoding'], 'gzip')
    assert.match(String(zippedHit.headers.vary), /accept-encoding/i)
    assert.equal(decode(zippedHit), TEXT)

    const plainHit = await request(port, '/c')
    assert.equal(plainHit.headers.hit_cache, 'True')
    assert.equal(plainHit.headers['content-encoding'], undefined)
    assert.equal(plainHit.text, TEXT)
    const identity = await request(port, '/c', { headers: { 'accept-encoding': 'identity' } })
    assert.equal(identity.headers['content-encoding'], undefined)
    assert.equal(identity.text, TEXT)

    // br: its own variant; a client accepting both gets one it accepts.
    const br = await request(port, '/c', { headers: { 'accept-encoding': 'br' } })
    assert.equal(br.headers['content-encoding'], 'br')
    assert.equal(decode(br), TEXT)
    assert.equal(calls.n, 3)
    const both = await request(port, '/c', { headers: { 'accept-encoding': 'gzip;q=1, br;q=0.5' } })
    assert.equal(both.headers['content-encoding'], 'gzip')
    assert.equal(decode(both), TEXT)
    assert.equal(calls.n, 3)

    assert.equal(await cache.deleteCached('/c'), true)
    for (const k of ['view//c', 'view//c|gzip', 'view//c|br'])
      assert.equal(await cache.has(k), false, k)
  })

  test('compression inside, body below its threshold: the unencoded answer is kept for gzip clients', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/tiny', cache.cached(), compression(), (_req, res) => {
      calls.n++
      res.type('text/plain').send('tiny')
    })
    const port = await listen(app)
    const first = await request(port, '/tiny', { headers: gzip })
    assert.equal(first.headers['content-encoding'], undefined)
    assert.match(String(first.headers.vary), /accept-encoding/i)
    const second = await request(port, '/tiny', { headers: gzip })
    assert.equal(second.text, 'tiny')
    assert.equal(calls.n, 1)
    await request(port, '/tiny')
    await request(port, '/tiny')
    assert.equal(calls.n, 2)
  })
})

// ---------------------------------------------------------------- backend failures

describe('backend failures', () => {
  test('a failing backend: the page is served uncached and the error logged once', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: DownBackend, logger })
    const app = express()
    const calls = counter()
    app.get('/down', cache.cached(), (_req, res) => {
      calls.n++
      res.send('still up')
    })
    const port = await listen(app)
    for (let i = 0; i < 3; i++) {
      const r = await request(port, '/down')
      assert.equal(r.status, 200)
      assert.equal(r.text, 'still up')
    }
    assert.equal(calls.n, 3)
    assert.equal(logger.errors.length, 1)
    assert.match(logger.errors[0] as string, /cached view\/\/down: backend down/)
  })

  test('a backend that fails on write only: served, logged', async () => {
    class WriteDown extends SimpleCache {
      override async set(): Promise<boolean> {
        throw new Error('disk full')
      }
    }
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: WriteDown, logger })
    const app = express()
    app.get('/wd', cache.cached(), (_req, res) => {
      res.send('ok')
    })
    const port = await listen(app)
    assert.equal((await request(port, '/wd')).text, 'ok')
    assert.equal((await request(port, '/wd')).text, 'ok')
    assert.equal(logger.errors.length, 1)
    assert.match(logger.errors[0] as string, /cached view\/\/wd: disk full/)
  })

  test('CACHE_RAISE_ERRORS: the backend error goes to next(err)', async () => {
    const cache = new Cache({
      CACHE_TYPE: DownBackend,
      CACHE_RAISE_ERRORS: true,
      logger: collectingLogger(),
    })
    const app = express()
    const errors: unknown[] = []
    app.get('/raise', cache.cached(), (_req, res) => {
      res.send('not reached')
    })
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(err)
      res.status(503).send('unavailable')
    })
    const port = await listen(app)
    assert.equal((await request(port, '/raise')).status, 503)
    assert.equal((errors[0] as Error).message, 'backend down')
  })
})

// ---------------------------------------------------------------- deleteCached

describe('invalidateOnUnsafe', () => {
  test('a successful POST/PUT/PATCH/DELETE through the middleware deletes the page of its URL', async () => {
    const cache = newCache()
    const app = express()
    let renders = 0
    const counts = { post: 0 }
    app.use(
      cache.cached({
        invalidateOnUnsafe: true,
        responseHitIndication: true,
        keyPrefix: (req: Request) => `view/${req.headers['x-user'] ?? 'anon'}%s`,
      }),
    )
    app.get('/items/:id', (req, res) => {
      res.send(`item ${req.params.id} #${++renders}`)
    })
    app.post('/items/:id', (req, res) => {
      counts.post++
      res.status(req.query.fail === '1' ? 500 : 201).send('saved')
    })
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      app[method.toLowerCase() as 'put' | 'patch' | 'delete']('/items/:id', (_req, res) => {
        res.sendStatus(204)
      })
    }
    const port = await listen(app)
    const as = (user: string) => ({ headers: { 'x-user': user } })
    const page = async (user = 'ada', path = '/items/1') => request(port, path, as(user))

    await page()
    assert.equal((await page()).headers.hit_cache, 'True')
    await page('bob')
    await page('ada', '/items/2')
    // A failed write changes nothing.
    await request(port, '/items/1?fail=1', { method: 'POST', ...as('ada') })
    assert.equal((await page()).headers.hit_cache, 'True')
    const saved = await request(port, '/items/1', { method: 'POST', ...as('ada') })
    assert.equal(saved.status, 201)
    const after = await page()
    assert.equal(after.headers.hit_cache, undefined, "ada's page was deleted")
    assert.equal((await page('bob')).headers.hit_cache, 'True', "bob's page is his own")
    assert.equal((await page('ada', '/items/2')).headers.hit_cache, 'True', 'other URLs stay')
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      assert.equal((await page()).headers.hit_cache, 'True')
      assert.equal((await request(port, '/items/1', { method, ...as('ada') })).status, 204)
      assert.equal((await page()).headers.hit_cache, undefined, method)
    }
    assert.equal(counts.post, 2)
  })

  test('off by default: a POST leaves the page cached', async () => {
    const cache = newCache()
    const app = express()
    app.use(cache.cached({ responseHitIndication: true }))
    app.get('/p', (_req, res) => {
      res.send('p')
    })
    app.post('/p', (_req, res) => {
      res.send('ok')
    })
    const port = await listen(app)
    await request(port, '/p')
    await request(port, '/p', { method: 'POST' })
    assert.equal((await request(port, '/p')).headers.hit_cache, 'True')
    assert.throws(() => cache.cached({ invalidateOnUnsafe: 'yes' as never }), {
      name: 'TypeError',
      message: /invalidateOnUnsafe must be a boolean/,
    })
  })
})

describe('deleteCached', () => {
  test('by path (default options) and by middleware with queryArgs in every form', async () => {
    const cache = newCache()
    const app = express()
    const calls = counter()
    app.get('/users/:id', cache.cached(), (req, res) => {
      calls.n++
      res.send(`${req.params.id} #${calls.n}`)
    })
    const search = cache.cached({ queryString: true, keyPrefix: 'search%s' })
    app.get('/search', search, (req, res) => {
      calls.n++
      res.send(`${req.url} #${calls.n}`)
    })
    const port = await listen(app)
    await request(port, '/users/42')
    assert.equal(await cache.deleteCached('/users/42'), true)
    assert.equal(await cache.has('view//users/42'), false)
    assert.equal(await cache.deleteCached('/users/42'), false)
    assert.equal((await request(port, '/users/42')).text, '42 #2')

    await request(port, '/search?b=2&a=1')
    const key = `search/search${sha256hex("(('a', '1'), ('b', '2'))")}`
    assert.equal(await cache.has(key), true)
    for (const queryArgs of [
      'a=1&b=2',
      '?b=2&a=1',
      new URLSearchParams({ b: '2', a: '1' }),
      { a: 1, b: '2' },
      [
        ['b', '2'],
        ['a', '1'],
      ] as [string, string][],
    ]) {
      assert.equal(await search.makeCacheKey({ path: '/search', queryArgs }), key)
    }
    assert.equal(
      await cache.deleteCached(search, { path: '/search', queryArgs: { b: 2, a: 1 } }),
      true,
    )
    assert.equal(await cache.has(key), false)
    // The options spelled out work too.
    await request(port, '/search?x=1')
    assert.equal(
      await cache.deleteCached({
        path: '/search',
        queryArgs: 'x=1',
        queryString: true,
        keyPrefix: 'search%s',
      }),
      true,
    )
    assert.equal((await request(port, '/search?x=1')).text.endsWith('#5'), true)
  })

  test('a function keyPrefix gets the request given to deleteCached, or a stand-in', async () => {
    const cache = newCache()
    const mw = cache.cached<Request>({
      keyPrefix: (req) => `lang/${req.path}/${String(req.headers['x-lang'] ?? 'en')}`,
    })
    assert.equal(await mw.makeCacheKey({ path: '/a' }), 'lang//a/en')
    assert.equal(
      await mw.makeCacheKey({ path: '/a', request: { path: '/a', headers: { 'x-lang': 'fr' } } }),
      'lang//a/fr',
    )
    await cache.set('lang//a/en', 'x')
    assert.equal(await cache.deleteCached(mw, { path: '/a' }), true)
    await assert.rejects(() => mw.makeCacheKey({}), TypeError)
  })
})

// ---------------------------------------------------------------- apps

describe('apps', () => {
  test('memoize inside a cached route uses the backend of the app serving the request', async () => {
    const cache = new Cache()
    const app1 = express()
    const app2 = express()
    let calls = 0
    const load = cache.memoize(async (id: string) => {
      calls++
      return `value ${id}`
    })
    for (const app of [app1, app2]) {
      app.get('/m/:id', cache.cached(), async (req, res) => {
        res.send(await load(req.params.id as string))
      })
    }
    // After the routes: the app-context middleware initApp adds never runs for them.
    cache.initApp(app1, { CACHE_TYPE: 'SimpleCache' })
    cache.initApp(app2, { CACHE_TYPE: 'SimpleCache' })
    const port1 = await listen(app1)
    const port2 = await listen(app2)
    assert.equal((await request(port1, '/m/1')).text, 'value 1')
    assert.equal(calls, 1)
    assert.equal((await request(port2, '/m/1')).text, 'value 1')
    assert.equal(calls, 2, "app2's memoize must not see app1's entry")
    assert.equal(await cache.runWithApp(app1, () => cache.has('view//m/1')), true)
    assert.equal(await cache.runWithApp(app2, () => cache.has('view//m/1')), true)
    await cache.runWithApp(app1, () => cache.clear())
    await request(port1, '/m/1')
    assert.equal(calls, 3)
    await request(port2, '/m/1')
    assert.equal(calls, 3)
  })
})

// ---------------------------------------------------------------- set-up

describe('set-up', () => {
  test('bad options throw at set-up, naming the option', () => {
    const cache = newCache()
    assert.throws(
      () => cache.cached({ timeot: 5 } as never),
      (e: Error) => {
        return e instanceof TypeError && e.message.includes('"timeot"')
      },
    )
    assert.throws(() => cache.cached({ timeout: -1 }), InvalidTimeoutError)
    assert.throws(() => cache.cached({ timeout: 'soon' }), InvalidTimeoutError)
    assert.throws(() => cache.cached({ keyPrefix: 5 } as never), /keyPrefix/)
    assert.throws(() => cache.cached({ unless: true } as never), /unless/)
    assert.throws(() => cache.cached({ cacheStatuses: [200, 'x'] } as never), /cacheStatuses/)
    assert.throws(() => cache.cached({ maxBodySize: -1 }), /maxBodySize/)
    assert.throws(
      () => cache.cached({ responseHitIndication: 'bad header' }),
      /responseHitIndication/,
    )
    assert.throws(() => cache.cached({ hashMethod: 'nope' }), /hashMethod/)
    assert.throws(() => setCacheTimeout({}, -5), InvalidTimeoutError)
  })

  test('cached(cache, options) is cache.cached(options); cacheNone is accepted', async () => {
    const cache = newCache()
    const mw: CachedMiddleware = cached(cache, { timeout: '2m', cacheNone: true })
    assert.equal(mw.cacheTimeout, 120)
    assert.equal(mw.options.cacheNone, true)
    assert.equal(await mw.makeCacheKey({ path: '/x' }), 'view//x')
    const direct = createCachedMiddleware(() => {
      throw new Error('no slot')
    })
    const app = express()
    app.get('/noslot', direct, (_req, res) => {
      res.send('unreached')
    })
    app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).send(err.message)
    })
    const port = await listen(app)
    assert.equal((await request(port, '/noslot')).text, 'no slot')
  })
})
