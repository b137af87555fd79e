/**
 * What the groups that run against a redis-server (redis, tiered, stampede)
 * share: starting the server, the cachette facade over it, and the server's
 * command counter.
 */
import type { Redis as IORedis } from 'ioredis'
import { Cache, type CacheType } from '../../src/index.js'
import { type RedisServer, startRedis } from '../../test/servers/redis.js'
import { TTL_S } from './kv.js'

/** A redis-server started for one group's run, and how to reach it. */
export interface BenchRedis {
  /** Stop it in the group's `finally`. */
  readonly server: RedisServer
  /** `redis://127.0.0.1:<port>`, for cachette's CACHE_REDIS_URL and @keyv/redis. */
  readonly url: string
  /** `{ host, port }`, for ioredis and bentocache's redisDriver. */
  readonly connection: { readonly host: string; readonly port: number }
}

/** Starts a standalone redis-server on a free loopback port (test/servers/redis.ts). */
export async function startBenchRedis(): Promise<BenchRedis> {
  const server = await startRedis()
  return {
    server,
    url: `redis://127.0.0.1:${server.port}`,
    connection: { host: '127.0.0.1', port: server.port },
  }
}

/**
 * A cachette `Cache` over the run's redis-server with no key prefix (so it
 * addresses the same key names as the raw client and the other contenders)
 * and {@link TTL_S} as default timeout. `type` is the CACHE_TYPE: RedisCache
 * unless a group wraps it (the tiered group's `TieredCache.over(RedisCache)`);
 * `options` its CACHE_OPTIONS (`{ client: 'node-redis' }` for node-redis).
 */
export function redisFacade(
  url: string,
  type: CacheType = 'RedisCache',
  options: Record<string, unknown> = {},
): Cache {
  return new Cache({
    CACHE_TYPE: type,
    CACHE_REDIS_URL: url,
    CACHE_KEY_PREFIX: '',
    CACHE_DEFAULT_TIMEOUT: TTL_S,
    CACHE_OPTIONS: options,
  })
}

/**
 * The server's `total_commands_processed`, read through a connection of its
 * own (`client`, not one a contender uses). `group` names the group in the
 * error.
 */
export async function commandsProcessed(client: IORedis, group: string): Promise<number> {
  const info = await client.info('stats')
  const m = /total_commands_processed:(\d+)/.exec(info)
  if (!m) throw new Error(`${group}: INFO stats has no total_commands_processed`)
  return Number(m[1])
}

/**
 * What reading {@link commandsProcessed} twice in a row adds (the INFO
 * itself): a group subtracts it from every before/after count.
 */
export async function infoOverhead(client: IORedis, group: string): Promise<number> {
  const c0 = await commandsProcessed(client, group)
  return (await commandsProcessed(client, group)) - c0
}
