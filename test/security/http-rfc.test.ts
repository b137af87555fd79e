/**
 * Attacks on what the RFC 9111/9110/9213 additions of the shared HTTP cache
 * store, on every framework driver over real sockets: a POST response kept
 * for later GETs (another user's request, another host, an encoded path), a
 * targeted field (`CDN-Cache-Control`) beside a session cookie or
 * `Cache-Control: private`, a 206 an origin sends on its own, and Vary
 * values that must stay apart. Each test is a request of one user followed
 * by another user's, who must not receive the first one's data.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { get } from '../helpers.js'
import { counter, type RouteSpec } from '../http-matrix/driver.js'
import { describeMatrix, GET } from '../http-matrix/drivers.js'

const PAGE = (user: string | string[] | undefined) => `page of ${String(user ?? 'anon')}`

describeMatrix(
  'Security: POST then GET, targeted fields, ranges, Vary values',
  (_driver, { cached }) => {
    test("a POST made with Authorization is never another user's GET (RFC 9111 §3.5)", async () => {
      const post: RouteSpec = {
        method: 'POST',
        path: '/me',
        handler: (req) => ({
          headers: { 'Cache-Control': 'max-age=60', 'Content-Location': '/me' },
          body: PAGE(req.headers.authorization),
        }),
      }
      const { count } = counter()
      const s = await cached(
        [
          post,
          GET('/me', [], (req) => ({
            body: `${PAGE(req.headers.authorization)} #${count('/me')}`,
          })),
        ],
        { storePostResponses: true },
      )
      assert.equal(
        (await get(s.port, '/me', { authorization: 'Bearer alice' }, 'POST')).body,
        'page of Bearer alice',
      )
      const bob = await get(s.port, '/me')
      assert.equal(bob.body, 'page of anon #1', "alice's POST response is not served")
    })

    test('a POST response that sets a cookie never hands it to another user', async () => {
      const s = await cached(
        [
          {
            method: 'POST',
            path: '/login',
            handler: () => ({
              headers: {
                'Cache-Control': 'max-age=60',
                'Content-Location': '/login',
                'Set-Cookie': 'sid=alice-secret',
              },
              body: 'welcome alice',
            }),
          },
          GET('/login', [], () => ({ body: 'login form' })),
        ],
        { storePostResponses: true },
      )
      await get(s.port, '/login', {}, 'POST')
      const bob = await get(s.port, '/login')
      assert.equal(bob.headers['set-cookie'], undefined)
      assert.equal(bob.body, 'login form')
    })

    test('a POST cannot store under another host, or under a path it only decodes to', async () => {
      const { count } = counter()
      const poison =
        (location: string): RouteSpec['handler'] =>
        () => ({
          headers: { 'Cache-Control': 'max-age=60', 'Content-Location': location },
          body: 'planted',
        })
      const s = await cached(
        [
          { method: 'POST', path: '/a', handler: poison('http://other.example/a') },
          { method: 'POST', path: '/x%2Fy', handler: poison('/x/y') },
          GET('/a', [], () => ({ body: `a #${count('/a')}` })),
          GET('/x/y', [], () => ({ body: `xy #${count('/x/y')}` })),
        ],
        { storePostResponses: true },
      )
      await get(s.port, '/a', {}, 'POST')
      assert.equal((await get(s.port, '/a')).body, 'a #1', 'Content-Location on another host')
      await get(s.port, '/x%2Fy', {}, 'POST')
      assert.equal((await get(s.port, '/x/y')).body, 'xy #1', 'an encoded path is not its decoding')
    })

    test('CDN-Cache-Control does not make a cookie-setting page shared, and a stored one keeps no cookie', async () => {
      const { count } = counter()
      const s = await cached([
        GET('/cdn', [], () => ({
          headers: {
            'CDN-Cache-Control': 'max-age=600',
            'Set-Cookie': `sid=user-${count('/cdn')}`,
          },
          body: 'cdn page',
        })),
        GET('/cdn-public', [], () => ({
          headers: { 'CDN-Cache-Control': 'public, max-age=600', 'Set-Cookie': 'sid=alice-secret' },
          body: 'public page',
        })),
      ])
      await get(s.port, '/cdn')
      const second = await get(s.port, '/cdn')
      assert.notEqual(
        second.headers['x-cache'],
        'hit',
        'a Set-Cookie without public/s-maxage is not stored',
      )
      assert.deepEqual(second.headers['set-cookie'], ['sid=user-2'])
      await get(s.port, '/cdn-public')
      const bob = await get(s.port, '/cdn-public')
      assert.equal(bob.headers['x-cache'], 'hit')
      assert.equal(bob.headers['set-cookie'], undefined, "alice's session cookie is not replayed")
    })

    test('Cache-Control: private keeps a per-user page out even when CDN-Cache-Control allows storing it', async () => {
      const s = await cached([
        GET('/account', [], (req) => ({
          headers: { 'Cache-Control': 'private', 'CDN-Cache-Control': 'public, max-age=600' },
          body: PAGE(req.headers['x-user']),
        })),
      ])
      await get(s.port, '/account', { 'x-user': 'alice' })
      assert.equal((await get(s.port, '/account', { 'x-user': 'bob' })).body, 'page of bob')
    })

    test('a 206 the origin sends on its own is never stored as the whole representation', async () => {
      const { count } = counter()
      const s = await cached([
        GET('/part', [], () => ({
          status: 206,
          headers: { 'Cache-Control': 'max-age=600', 'Content-Range': 'bytes 0-3/10' },
          body: `p${count('/part')}ar`,
        })),
      ])
      await get(s.port, '/part', { range: 'bytes=0-3' })
      const next = await get(s.port, '/part')
      assert.notEqual(next.headers['x-cache'], 'hit')
      assert.equal(next.body, 'p2ar')
    })

    test("Vary values that mean different things stay apart: an unknown field's case, an invalid weight", async () => {
      const s = await cached([
        GET('/tenant', [], (req) => ({
          headers: { 'Cache-Control': 'max-age=600', Vary: 'X-Tenant, Accept-Language' },
          body: `${String(req.headers['x-tenant'])}/${String(req.headers['accept-language'])}`,
        })),
      ])
      await get(s.port, '/tenant', { 'x-tenant': 'acme', 'accept-language': 'en' })
      assert.equal(
        (await get(s.port, '/tenant', { 'x-tenant': 'ACME', 'accept-language': 'en' })).body,
        'ACME/en',
      )
      assert.equal(
        (await get(s.port, '/tenant', { 'x-tenant': 'acme', 'accept-language': 'en;q=2' })).body,
        'acme/en;q=2',
      )
    })
  },
)
