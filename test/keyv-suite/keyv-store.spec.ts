/**
 * Keyv's official storage-adapter suite (`@keyv/test-suite`: API, values
 * and namespaces) against `toKeyvStore(cache)`, for a cachette Cache on
 * SimpleCache and on RedisCache against a real redis-server.
 */
import keyvTestSuite from '@keyv/test-suite'
import Keyv from 'keyv'
import * as vitest from 'vitest'
import { toKeyvStore } from '../../src/backends/keyv/index.js'
import { Cache } from '../../src/index.js'
import { type RedisServer, startRedis } from '../servers/redis.js'

type Suite = Parameters<typeof keyvTestSuite>[0]
const suite = vitest as unknown as Suite

vitest.describe('toKeyvStore over SimpleCache', () => {
  const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 0 })
  keyvTestSuite(suite, Keyv, () => toKeyvStore(cache))
})

vitest.describe('toKeyvStore over RedisCache (redis-server)', () => {
  let server: RedisServer | undefined
  let cache: Cache | undefined
  vitest.beforeAll(async () => {
    server = await startRedis()
    cache = new Cache({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_URL: `redis://${server.host}:${server.port}`,
      CACHE_KEY_PREFIX: 'keyv-suite:',
      CACHE_DEFAULT_TIMEOUT: 0,
    })
  })
  vitest.afterAll(async () => {
    await cache?.close()
    await server?.stop()
  })
  keyvTestSuite(suite, Keyv, () => {
    if (cache === undefined) throw new Error('the Redis cache is not started')
    return toKeyvStore(cache)
  })
})
