/**
 * Internal: the figures of `stats()` on the Redis backends, from `INFO`.
 */
import type { RedisClient } from './client.js'

/** `INFO` of a client (ioredis, or the node-redis adapter); not in {@link RedisClient}, which lists the data commands. */
interface InfoCommand {
  info(section?: string): Promise<string>
}

/** Where a node connection points (its `options`), for naming cluster nodes. */
interface NodeOptions {
  readonly options?: { readonly host?: string; readonly port?: number }
}

function nodeLabel(node: NodeOptions): string {
  return `${node.options?.host ?? '?'}:${node.options?.port ?? '?'}`
}

/** The `INFO` fields `BaseRedisCache.stats()` reports, in this order. */
const INFO_FIGURES = [
  'redis_version',
  'uptime_in_seconds',
  'connected_clients',
  'used_memory_human',
  'used_memory_peak_human',
  'maxmemory_human',
  'maxmemory_policy',
  'keyspace_hits',
  'keyspace_misses',
  'expired_keys',
  'evicted_keys',
]

/** Picks {@link INFO_FIGURES} and the keyspace lines (`db0:keys=3,expires=1,...`) out of an `INFO` reply. */
function infoFigures(text: string): Record<string, string | number> {
  const fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1))
  }
  const figure = (v: string): string | number => (/^\d+$/.test(v) ? Number(v) : v)
  const out: Record<string, string | number> = {}
  for (const name of INFO_FIGURES) {
    const v = fields.get(name)
    if (v !== undefined) out[name] = figure(v)
  }
  for (const [name, v] of fields) {
    if (!/^db\d+$/.test(name)) continue
    for (const part of v.split(',')) {
      const [k, n] = part.split('=')
      if ((k === 'keys' || k === 'expires') && n !== undefined) out[`${name}_${k}`] = figure(n)
    }
  }
  return out
}

/**
 * The figures of every node in `nodes` (a cluster's masters, or the one
 * client): `INFO` asked of each in turn; with `labelled`, each name is
 * prefixed with the node's `host:port `.
 */
export async function redisStats(
  nodes: readonly RedisClient[],
  labelled: boolean,
): Promise<Record<string, string | number>> {
  const out: Record<string, string | number> = {}
  for (const node of nodes) {
    const text = await (node as RedisClient & InfoCommand).info()
    const label = labelled ? `${nodeLabel(node as RedisClient & NodeOptions)} ` : ''
    for (const [name, value] of Object.entries(infoFigures(text))) out[label + name] = value
  }
  return out
}
