/**
 * The documented recipes when a stored response goes stale: README's "A
 * caching reverse proxy in a few lines" (Express with http-proxy-middleware,
 * Hono with hono/proxy), the same with compression where users put it, and
 * `httpCache` + `validation()` in front of an app's own routes on every
 * framework. `validation()` gives an origin response without an ETag one of
 * its own (a hash of the body); that ETag is the front's, never the
 * origin's: a revalidation must reach the origin with only the validators
 * the origin issued, and the origin's full 200 (same body, new header
 * fields) must reach the client and replace the stored response instead of
 * being turned into a 304 by `validation()` because the body hash matched.
 *
 * Every origin is a real server answering, per request number n, the same
 * body with `X-Origin-Version: n`. Time is an injected clock: entries go
 * stale when the test advances it, never after a sleep.
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, test } from 'node:test'
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib'
import compression from 'compression'
import express from 'express'
import { Hono } from 'hono'
import { compress } from 'hono/compress'
import { proxy } from 'hono/proxy'
import { createProxyMiddleware } from 'http-proxy-middleware'
import {
  httpCache as expressHttpCache,
  validation as expressValidation,
} from '../src/frameworks/express/index.js'
import {
  httpCache as honoHttpCache,
  validation as honoValidation,
} from '../src/frameworks/hono/index.js'
import { HttpCache } from '../src/http/index.js'
import { fakeClock, httpRequest, type Listening, listen, type Reply } from './helpers.js'
import { newCache, type RouteSpec, storedIn } from './http-matrix/driver.js'
import { expressDriver } from './http-matrix/express.js'
import { fastifyDriver } from './http-matrix/fastify.js'
import { honoDriver, listenHono } from './http-matrix/hono.js'
import { koaDriver } from './http-matrix/koa.js'

type Clock = ReturnType<typeof fakeClock>

/** The origin's body, the same on every response (over 1 KiB, so compression applies). */
const BODY = 'the same origin body, every time\n'.repeat(64)
/** The origin's freshness lifetime, seconds. */
const MAX_AGE = 10
/** How far the clock moves to make a stored response stale. */
const PAST_MAX_AGE_MS = (MAX_AGE + 1) * 1000
/** The origin's own Last-Modified, when it has one. */
const LAST_MODIFIED = 'Wed, 01 Jan 2020 00:00:00 GMT'
/** The origin's own ETag, when it has one. */
const ORIGIN_ETAG = '"origin-v1"'

/** A shared cache on a new cache, reading the test's clock. */
function engineOn(clock: Clock): HttpCache {
  return new HttpCache({ cache: newCache(), clock: clock.now })
}

/** What the origin sends besides its body and `X-Origin-Version`. */
interface OriginOptions {
  /** Its own ETag; it answers a matching `If-None-Match` with a 304 of its own. */
  etag?: string
  /** Its own Last-Modified; it ignores `If-Modified-Since` and answers a full 200. */
  lastModified?: string
}

/** A real origin server, and the headers of every request it received, in order. */
interface Origin extends Listening {
  /** `http://127.0.0.1:<port>`. */
  target: string
  requests: IncomingHttpHeaders[]
}

/**
 * An origin answering request number n with `Cache-Control: max-age=10`,
 * `X-Origin-Version: n`, a `Date` from `clock` and {@link BODY}, plus its
 * own validators from `options`.
 */
async function startOrigin(clock: Clock, options: OriginOptions = {}): Promise<Origin> {
  const requests: IncomingHttpHeaders[] = []
  const server = await listen((req, res) => {
    requests.push({ ...req.headers })
    const headers: Record<string, string> = {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': `max-age=${MAX_AGE}`,
      Date: new Date(clock.now()).toUTCString(),
      'X-Origin-Version': String(requests.length),
    }
    if (options.etag !== undefined) headers.ETag = options.etag
    if (options.lastModified !== undefined) headers['Last-Modified'] = options.lastModified
    if (options.etag !== undefined && req.headers['if-none-match'] === options.etag) {
      res.writeHead(304, headers)
      res.end()
      return
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(Buffer.byteLength(BODY)) })
    res.end(BODY)
  })
  return { ...server, target: `http://127.0.0.1:${server.port}`, requests }
}

/** A front (the recipe under test) proxying everything to `target`. */
type Front = (engine: HttpCache, target: string) => Promise<Listening>

/** The parts a front is made of, outermost first. */
type Part = 'compression' | 'httpCache' | 'validation'

/** An Express front: `parts` in order (README's recipe: httpCache, validation), then http-proxy-middleware. */
const expressFront =
  (...parts: Part[]): Front =>
  (engine, target) => {
    const app = express()
    for (const part of parts) {
      if (part === 'compression') app.use(compression())
      else if (part === 'httpCache') app.use(expressHttpCache(engine))
      else app.use(expressValidation())
    }
    app.use(createProxyMiddleware({ target }))
    return listen(app)
  }

/** A Hono front: `parts` in order, then hono/proxy for every path (served by @hono/node-server). */
const honoFront =
  (...parts: Part[]): Front =>
  (engine, target) => {
    const app = new Hono()
    for (const part of parts) {
      if (part === 'compression') app.use(compress())
      else if (part === 'httpCache') app.use(honoHttpCache(engine))
      else app.use(honoValidation())
    }
    app.all('*', (c) => {
      const url = new URL(c.req.url)
      return proxy(`${target}${url.pathname}${url.search}`, c.req.raw)
    })
    return listenHono(app)
  }

/** README's Express recipe, as written. */
const expressProxy = expressFront('httpCache', 'validation')
/** README's Hono recipe, as written. */
const honoProxy = honoFront('httpCache', 'validation')
/** `validation()` in front of `httpCache` (it then hashes every hit; nothing it makes is stored). */
const expressValidationOutermost = expressFront('validation', 'httpCache')
const expressCompressionOutermost = expressFront('compression', 'httpCache', 'validation')
const expressCompressionInside = expressFront('httpCache', 'validation', 'compression')
const honoCompressOutermost = honoFront('compression', 'httpCache', 'validation')
const honoCompressInside = honoFront('httpCache', 'validation', 'compression')

/** The body as the client reads it: decoded per its `Content-Encoding`. */
function decoded(reply: Reply): string {
  const coding = reply.headers['content-encoding']
  if (coding === undefined || coding === 'identity') return reply.text
  if (coding === 'gzip') return gunzipSync(reply.body).toString('utf8')
  if (coding === 'deflate') return inflateSync(reply.body).toString('utf8')
  if (coding === 'br') return brotliDecompressSync(reply.body).toString('utf8')
  throw new Error(`unexpected Content-Encoding ${coding}`)
}

/** What a scenario gets: the clock, the engine, the origin and the front, all started. */
interface Setup {
  clock: Clock
  engine: HttpCache
  origin: Origin
  front: Listening
  /** A GET of `path` to the front with the recipe's client headers plus `extra`. */
  request(path: string, extra?: Record<string, string>): Promise<Reply>
  /** Waits for `path`'s response (as the recipe's client asks for it) to be stored. */
  stored(path: string): Promise<void>
}

/** Starts an origin with `originOptions` and `front` before it, runs `run`, closes both. */
async function withFront(
  front: Front,
  originOptions: OriginOptions,
  clientHeaders: Record<string, string>,
  run: (setup: Setup) => Promise<void>,
): Promise<void> {
  const clock = fakeClock()
  const engine = engineOn(clock)
  const origin = await startOrigin(clock, originOptions)
  let server: Listening | undefined
  try {
    server = await front(engine, origin.target)
    const s = server
    await run({
      clock,
      engine,
      origin,
      front: s,
      request: (path, extra = {}) =>
        httpRequest(s.port, path, { headers: { ...clientHeaders, ...extra } }),
      stored: (path) => storedIn(engine, s.port, path, clientHeaders),
    })
  } finally {
    await server?.close()
    await origin.close()
  }
}

/** Checks of a 200 the client got: the origin's body (decoded), and the coding expected. */
function assertOriginBody(reply: Reply, encoding: string | undefined, what: string): void {
  assert.equal(reply.status, 200, `${what}: status`)
  assert.equal(reply.headers['content-encoding'], encoding, `${what}: Content-Encoding`)
  assert.equal(decoded(reply), BODY, `${what}: the body decodes to the origin's`)
}

/**
 * After a revalidation the origin answered with a full 200 (`second`): it
 * reached the client as a miss with the origin's new header field, and the
 * next request is a hit on it, the origin not asked again.
 */
async function assertNewResponseStored(
  setup: Setup,
  second: Reply,
  encoding: string | undefined,
  why: string,
): Promise<void> {
  assertOriginBody(second, encoding, "the origin's full 200 in answer to the revalidation")
  assert.equal(second.headers['x-origin-version'], '2', why)
  assert.equal(second.headers['x-cache'], 'miss', "the origin's new response, not a stored one")
  await setup.stored('/page')
  const third = await setup.request('/page')
  assertOriginBody(third, encoding, 'the hit after the update')
  assert.equal(third.headers['x-cache'], 'hit')
  assert.equal(third.headers['x-origin-version'], '2', 'the new response replaced the stored one')
  assert.equal(setup.origin.requests.length, 2)
}

/**
 * (a) An origin without validators: the front's generated ETag must not be
 * sent to it when the entry goes stale, and its new 200 (new header fields)
 * reaches the client and replaces the stored response.
 */
async function checkNoValidatorsRevalidation(
  front: Front,
  clientHeaders: Record<string, string> = {},
  encoding?: string,
): Promise<void> {
  await withFront(front, {}, clientHeaders, async (setup) => {
    const { clock, origin, request, stored } = setup
    const first = await request('/page')
    assertOriginBody(first, encoding, 'the first response')
    assert.equal(first.headers['x-origin-version'], '1')
    assert.equal(first.headers['x-cache'], 'miss')
    assert.ok(first.headers.etag, 'validation() gave the response an ETag')
    await stored('/page')
    const fresh = await request('/page')
    assertOriginBody(fresh, encoding, 'the fresh hit')
    assert.equal(fresh.headers['x-cache'], 'hit', 'fresh: answered from the store')
    assert.equal(origin.requests.length, 1, 'fresh: the origin was not asked')

    clock.advance(PAST_MAX_AGE_MS)
    const second = await request('/page')
    assert.equal(origin.requests.length, 2, 'stale: the origin was asked')
    const asked = origin.requests[1]
    assert.equal(
      asked?.['if-none-match'],
      undefined,
      "the revalidation carries no If-None-Match: the origin issued no ETag (the one validation() generated is the front's)",
    )
    assert.equal(asked?.['if-modified-since'], undefined, 'the origin issued no Last-Modified')
    await assertNewResponseStored(
      setup,
      second,
      encoding,
      "the origin's new response reaches the client, not the stored headers",
    )
  })
}

/**
 * (b) An origin with its own ETag, answering a matching `If-None-Match`
 * with its own 304: the revalidation carries exactly that ETag, and the
 * 304's header fields update the stored response the client gets.
 */
async function checkOriginETagRevalidation(front: Front): Promise<void> {
  await withFront(front, { etag: ORIGIN_ETAG }, {}, async ({ clock, origin, request, stored }) => {
    const first = await request('/page')
    assertOriginBody(first, undefined, 'the first response')
    assert.equal(first.headers.etag, ORIGIN_ETAG, "the origin's own ETag is kept")
    assert.equal(first.headers['x-origin-version'], '1')
    await stored('/page')

    clock.advance(PAST_MAX_AGE_MS)
    const second = await request('/page')
    assert.equal(origin.requests.length, 2, 'stale: the origin was asked')
    assert.equal(
      origin.requests[1]?.['if-none-match'],
      ORIGIN_ETAG,
      "the revalidation carries exactly the origin's ETag",
    )
    assertOriginBody(second, undefined, 'the revalidated response')
    assert.equal(second.headers['x-cache'], 'hit', 'the stored body, validated by the 304')
    assert.equal(second.headers.etag, ORIGIN_ETAG)
    assert.equal(second.headers['x-origin-version'], '2', "the 304's header fields updated it")

    await stored('/page')
    const third = await request('/page')
    assertOriginBody(third, undefined, 'the hit after the 304')
    assert.equal(third.headers['x-cache'], 'hit')
    assert.equal(third.headers['x-origin-version'], '2', 'the stored headers were updated')
    assert.equal(origin.requests.length, 2, 'the updated entry is fresh again')
  })
}

/**
 * (c) An origin with Last-Modified that ignores conditionals: the
 * revalidation carries its `If-Modified-Since` (and no generated ETag);
 * its full 200 is not turned into a 304 by `validation()` and replaces
 * the stored response.
 */
async function checkIgnoredIfModifiedSince(
  front: Front,
  clientHeaders: Record<string, string> = {},
  encoding?: string,
): Promise<void> {
  await withFront(front, { lastModified: LAST_MODIFIED }, clientHeaders, async (setup) => {
    const { clock, origin, request, stored } = setup
    const first = await request('/page')
    assertOriginBody(first, encoding, 'the first response')
    assert.equal(first.headers['last-modified'], LAST_MODIFIED)
    assert.equal(first.headers['x-origin-version'], '1')
    await stored('/page')

    clock.advance(PAST_MAX_AGE_MS)
    const second = await request('/page')
    assert.equal(origin.requests.length, 2, 'stale: the origin was asked')
    const asked = origin.requests[1]
    assert.equal(
      asked?.['if-modified-since'],
      LAST_MODIFIED,
      "the revalidation carries the origin's own validator",
    )
    assert.equal(
      asked?.['if-none-match'],
      undefined,
      'and not the ETag validation() generated (the origin issued none)',
    )
    await assertNewResponseStored(
      setup,
      second,
      encoding,
      "the origin's full 200 reaches the client: validation() did not turn it into a 304",
    )
  })
}

/**
 * (d) A client's own `If-None-Match` for the generated ETag: answered 304
 * from the store while fresh; on a miss (the entry purged) it never reaches
 * the origin, which issued no ETag.
 */
async function checkClientConditional(front: Front, validationOutside = false): Promise<void> {
  await withFront(front, {}, {}, async ({ engine, origin, front: s, request, stored }) => {
    const first = await request('/page')
    assertOriginBody(first, undefined, 'the first response')
    const etag = first.headers.etag
    assert.ok(typeof etag === 'string', 'validation() gave the response an ETag')
    await stored('/page')

    const fresh = await request('/page', { 'if-none-match': etag })
    assert.equal(fresh.status, 304, "the client's validator matches the stored response")
    // In front of the cache, validation() makes the 304 from the hit, with RFC 9110 §15.4.5's fields only.
    if (!validationOutside) assert.equal(fresh.headers['x-cache'], 'hit')
    assert.equal(fresh.headers.etag, etag)
    assert.equal(fresh.body.length, 0)
    assert.equal(origin.requests.length, 1, 'answered from the store')

    await engine.purge('/page', `127.0.0.1:${s.port}`)
    const missed = await request('/page', { 'if-none-match': etag })
    assert.equal(origin.requests.length, 2, 'a miss: the origin was asked')
    assert.equal(
      origin.requests[1]?.['if-none-match'],
      undefined,
      "the client's If-None-Match (the front's ETag) does not reach the origin",
    )
    assert.ok(
      missed.status === 200 || missed.status === 304,
      `a 200 or a 304 for the client, not ${missed.status}`,
    )
    if (missed.status === 200) assert.equal(decoded(missed), BODY)
  })
}

const proxyRecipes: { name: string; front: Front; validationOutside?: boolean }[] = [
  { name: 'Express: httpCache, validation(), http-proxy-middleware', front: expressProxy },
  { name: 'Hono: httpCache, validation(), hono/proxy', front: honoProxy },
  {
    name: 'Express: validation(), httpCache, http-proxy-middleware',
    front: expressValidationOutermost,
    validationOutside: true,
  },
]

for (const recipe of proxyRecipes) {
  describe(`The caching reverse proxy recipe (${recipe.name})`, () => {
    test("RFC 9111 §4.3.1: a stale entry is revalidated with only the origin's validators (none: never the ETag validation() generated); §4.3.3: the origin's new 200 reaches the client and replaces the stored one", () =>
      checkNoValidatorsRevalidation(recipe.front))

    test("RFC 9111 §4.3.1/§4.3.4: the revalidation carries exactly the origin's own ETag; its 304 updates the stored headers the client gets", () =>
      checkOriginETagRevalidation(recipe.front))

    test("RFC 9111 §4.3.3/§4.3.4, RFC 9110 §15.4.5: a full 200 answering the origin's own If-Modified-Since is not reduced to a 304 by validation(); it replaces the stored one", () =>
      checkIgnoredIfModifiedSince(recipe.front))

    test("RFC 9111 §4.3.2: a client's If-None-Match for the generated ETag is answered 304 from the store while fresh; on a miss it never reaches the origin", () =>
      checkClientConditional(recipe.front, recipe.validationOutside))
  })
}

const GZIP_CLIENT = { 'accept-encoding': 'gzip' }

const compressedRecipes: { name: string; front: Front }[] = [
  { name: 'Express, compression() outermost', front: expressCompressionOutermost },
  {
    name: 'Express, compression() between validation() and the proxy',
    front: expressCompressionInside,
  },
  { name: 'Hono, compress() outermost', front: honoCompressOutermost },
  { name: 'Hono, compress() between validation() and the proxy', front: honoCompressInside },
]

for (const recipe of compressedRecipes) {
  describe(`The caching reverse proxy recipe with compression (${recipe.name})`, () => {
    test("RFC 9111 §4.3.1/§4.3.3: revalidated with only the origin's validators (none); the origin's new 200 reaches a gzip client, decoding to the origin's body", () =>
      checkNoValidatorsRevalidation(recipe.front, GZIP_CLIENT, 'gzip'))

    test("RFC 9111 §4.3.3/§4.3.4, RFC 9110 §15.4.5: a full 200 answering the origin's own If-Modified-Since reaches a gzip client and replaces the stored one, decoding to the origin's body", () =>
      checkIgnoredIfModifiedSince(recipe.front, GZIP_CLIENT, 'gzip'))
  })
}

describe('httpCache + validation() in front of the app itself (the app is the origin)', () => {
  for (const driver of [expressDriver, fastifyDriver, koaDriver, honoDriver]) {
    test(`${driver.name}: RFC 9111 §4.3.1/§4.3.3: a route without an ETag is revalidated without the generated one, and its new header fields reach the client`, async () => {
      const clock = fakeClock()
      const engine = engineOn(clock)
      const seen: Record<string, string | string[] | undefined>[] = []
      const route: RouteSpec = {
        method: 'GET',
        path: '/page',
        handler: (req) => {
          seen.push({ ...req.headers })
          return {
            headers: {
              'Content-Type': 'text/plain; charset=utf-8',
              'Cache-Control': `max-age=${MAX_AGE}`,
              Date: new Date(clock.now()).toUTCString(),
              'X-Origin-Version': String(seen.length),
            },
            body: BODY,
          }
        },
      }
      const s = await driver.start({ httpCache: engine, validation: true, routes: [route] })
      try {
        const first = await httpRequest(s.port, '/page')
        assertOriginBody(first, undefined, 'the first response')
        assert.equal(first.headers['x-origin-version'], '1')
        assert.equal(first.headers['x-cache'], 'miss')
        assert.ok(first.headers.etag, 'validation() gave the response an ETag')
        await storedIn(engine, s.port, '/page')
        const fresh = await httpRequest(s.port, '/page')
        assert.equal(fresh.headers['x-cache'], 'hit', 'fresh: answered from the store')
        assert.equal(seen.length, 1, 'fresh: the route did not run')

        clock.advance(PAST_MAX_AGE_MS)
        const second = await httpRequest(s.port, '/page')
        assert.equal(seen.length, 2, 'stale: the route ran')
        assert.equal(
          seen[1]?.['if-none-match'],
          undefined,
          'the route is not asked with the ETag validation() generated',
        )
        assertOriginBody(second, undefined, 'the response after staleness')
        assert.equal(
          second.headers['x-origin-version'],
          '2',
          "the route's new header fields reach the client",
        )
        assert.equal(
          second.headers['x-cache'],
          'miss',
          "the route's new response, not a stored one",
        )

        await storedIn(engine, s.port, '/page')
        const third = await httpRequest(s.port, '/page')
        assert.equal(third.headers['x-cache'], 'hit')
        assert.equal(
          third.headers['x-origin-version'],
          '2',
          'the new response replaced the stored one',
        )
        assert.equal(seen.length, 2)
      } finally {
        await s.close()
      }
    })
  }
})
