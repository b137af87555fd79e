/**
 * memcached: get (hit), set and getMany(100) on a local memcached started for
 * the run, through cachette's MemcachedCache (facade without and with the
 * default key prefix, and the backend), against cachette's own binary-protocol
 * connection issuing the same requests with the same bytes (the limit), memjs
 * (the mainstream binary-protocol client) with the same bytes, and keyv with
 * @keyv/memcache.
 */
import KeyvMemcache from '@keyv/memcache'
import { Keyv } from 'keyv'
import memjs from 'memjs'
import { Connection } from '../../src/backends/memcached/connection.js'
import { MemcachedCache } from '../../src/backends/memcached/index.js'
import { parseServer } from '../../src/backends/memcached/options.js'
import { Op, type Request, Status, storeExtras } from '../../src/backends/memcached/protocol.js'
import { Cache, encodeValue, v8Serializer } from '../../src/index.js'
import { startMemcached } from '../../test/servers/memcached.js'
import { closeAll, type Group, type GroupContext } from '../lib/group.js'
import {
  BATCH,
  checkReads,
  compareGetSet,
  KEYS,
  key,
  keyBatches,
  MASK,
  prefill,
  SINGLES,
  type Subject,
  singleGets,
  TTL_S,
  value,
} from '../lib/kv.js'
import {
  type Comparison,
  type ContenderSpec,
  compare,
  OPS_PER_SEC,
  opLoop,
  ratioOf,
} from '../lib/measure.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'

const RAW = "raw client (cachette's Connection, same requests, same bytes)"
const MEMJS = 'memjs 1.3.2 (same bytes)'
const FACADE = 'cachette Cache facade (MemcachedCache, no prefix)'
const BACKEND = 'cachette MemcachedCache backend (no prefix)'
const FACADE_PREFIX = "cachette Cache facade (default prefix 'flask_cache_')"
const KEYV = 'keyv v5 + @keyv/memcache'

/** A key's bytes as MemcachedCache without a prefix sends them. */
const wire = (k: string): Buffer => Buffer.from(k, 'latin1')

/** Throws unless every response of a raw batch is a hit or a skipped quiet get. */
function checked<T extends { status: number } | null>(responses: T[]): T[] {
  for (const r of responses) {
    if (r !== null && r.status !== Status.Ok) {
      throw new Error(`memcached: raw client got status 0x${r.status.toString(16)}`)
    }
  }
  return responses
}

export const memcachedGroup: Group = {
  name: 'memcached',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 9
    const sliceMs = ctx.quick ? 30 : 300
    const server = await startMemcached()
    const { address } = server
    const closers: (() => unknown)[] = [() => server.stop()]
    try {
      const raw = new Connection(parseServer(address), {
        commandTimeout: 1000,
        connectTimeout: 1000,
        maxRetryDelay: 1000,
      })
      closers.push(() => raw.close())
      const mj = memjs.Client.create(address, { logger: { log() {} } })
      closers.push(() => mj.close())
      // No key prefix: raw, memjs, facade and backend address the same key names.
      const cache = new Cache({
        CACHE_TYPE: 'MemcachedCache',
        CACHE_MEMCACHED_SERVERS: [address],
        CACHE_KEY_PREFIX: '',
        CACHE_DEFAULT_TIMEOUT: TTL_S,
      })
      closers.push(() => cache.close())
      const backend = new MemcachedCache({ servers: [address], defaultTimeout: TTL_S })
      closers.push(() => backend.close())
      // CACHE_KEY_PREFIX left at its default: every call checks the namespace in the same write.
      const prefixed = new Cache({
        CACHE_TYPE: 'MemcachedCache',
        CACHE_MEMCACHED_SERVERS: [address],
        CACHE_DEFAULT_TIMEOUT: TTL_S,
      })
      closers.push(() => prefixed.close())
      const kvStore = new KeyvMemcache(address, { logger: { log() {} } })
      closers.push(() => kvStore.client.close())
      const kv = new Keyv({ store: kvStore, namespace: 'kv' })
      const prefix = ((await prefixed.ready()) as MemcachedCache).keyPrefix
      if (prefix === '') throw new Error('memcached: the default key prefix is empty')
      await cache.ready()
      const encoded = Array.from({ length: KEYS }, (_, i) => encodeValue(value(i), v8Serializer))
      const extras = storeExtras(TTL_S)
      const subjects: Required<Subject>[] = [
        {
          name: RAW,
          role: 'limit',
          get: async (i) => {
            const [r] = checked(await raw.exec([{ opcode: Op.Get, key: wire(key(i)) }]))
            return r?.value.toString('utf8', 1)
          },
          set: async (i) =>
            checked(
              await raw.exec([
                { opcode: Op.Set, key: wire(key(i)), extras, value: encoded[i & MASK] as Buffer },
              ]),
            ),
          getMany: async (keys) => {
            // exec appended a Noop: its answer is the last response.
            const responses = checked(
              await raw.exec(keys.map((k): Request => ({ opcode: Op.GetQ, key: wire(k) }))),
            )
            return keys.map((_, j) => responses[j]?.value.toString('utf8', 1))
          },
        },
        {
          name: MEMJS,
          role: 'peer',
          get: async (i) => (await mj.get(key(i))).value?.toString('utf8', 1),
          set: (i) => mj.set(key(i), encoded[i & MASK] as Buffer, { expires: TTL_S }),
          // memjs 1.3.2 has no multi-get: concurrent gets (pipelined on its one connection).
          getMany: (keys) =>
            Promise.all(keys.map(async (k) => (await mj.get(k)).value?.toString('utf8', 1))),
        },
        {
          name: FACADE,
          role: 'subject',
          get: (i) => cache.get(key(i)),
          set: (i) => cache.set(key(i), value(i), TTL_S),
          getMany: (keys) => cache.getMany(keys),
        },
        {
          name: BACKEND,
          role: 'subject',
          get: (i) => backend.get(key(i)),
          set: (i) => backend.set(key(i), value(i), TTL_S),
          getMany: (keys) => backend.getMany(keys),
        },
        {
          name: FACADE_PREFIX,
          role: 'subject',
          get: (i) => prefixed.get(key(i)),
          set: (i) => prefixed.set(key(i), value(i), TTL_S),
          getMany: (keys) => prefixed.getMany(keys),
        },
        {
          name: KEYV,
          role: 'peer',
          get: (i) => kv.get(key(i)),
          set: (i) => kv.set(key(i), value(i), TTL_S * 1000),
          getMany: (keys) => kv.getMany(keys),
        },
      ]
      await prefill(subjects)
      const batchOf = keyBatches()
      // Every contender, the raw client and memjs included, reads back the string.
      await checkReads('memcached', subjects, (got) => got === value(7))
      for (const s of subjects) {
        const many = (await s.getMany(batchOf(1))) as unknown[]
        if (many.length !== BATCH || many.some((v, j) => v !== value(BATCH + j))) {
          throw new Error(`memcached: ${s.name} getMany did not return the stored values`)
        }
      }
      const pairs = [
        [FACADE, RAW],
        [BACKEND, RAW],
        [FACADE_PREFIX, RAW],
        [FACADE_PREFIX, FACADE],
        [FACADE, MEMJS],
        [FACADE, KEYV],
      ] as const
      const comparisons: Comparison[] = await compareGetSet({
        group: 'memcached',
        subjects,
        rounds,
        sliceMs,
        batch: 50,
        pairs,
        log: ctx.log,
      })
      // getMany: batches of 100 keys per op.
      ctx.log('memcached: getMany')
      comparisons.push(
        await compare({
          id: 'memcached.getMany',
          title: `memcached: getMany(${BATCH}), ${BATCH} keys per op`,
          unit: OPS_PER_SEC,
          rounds,
          contenders: [
            ...subjects.map(
              (s): ContenderSpec => ({
                name: s.name,
                role: s.role,
                sample: opLoop((i) => s.getMany(batchOf(i)), {
                  sliceMs,
                  batch: 5,
                  unit: OPS_PER_SEC,
                }),
              }),
            ),
            singleGets(cache, batchOf, sliceMs),
          ],
          pairs: [...pairs, [FACADE, SINGLES]],
          log: ctx.log,
        }),
      )
      const [getC, setC, manyC] = comparisons as [Comparison, Comparison, Comparison]
      const getVsRaw = ratioOf(getC, FACADE, RAW)
      const setVsRaw = ratioOf(setC, FACADE, RAW)
      const manyVsRaw = ratioOf(manyC, FACADE, RAW)
      const manyVsSingles = ratioOf(manyC, FACADE, SINGLES)
      const headlines: Headline[] = [
        {
          label: 'get: facade ÷ raw client (ops/s)',
          ratio: getVsRaw,
          target: target('>=', 0.9, getVsRaw),
        },
        {
          label: 'set: facade ÷ raw client (ops/s)',
          ratio: setVsRaw,
          target: target('>=', 0.9, setVsRaw),
        },
        {
          label: `getMany(${BATCH}): facade ÷ raw client (ops/s)`,
          ratio: manyVsRaw,
          target: target('>=', 0.9, manyVsRaw),
        },
        { label: 'get: facade ÷ memjs (ops/s)', ratio: ratioOf(getC, FACADE, MEMJS) },
        { label: 'get: facade ÷ keyv (ops/s)', ratio: ratioOf(getC, FACADE, KEYV) },
        {
          label: 'get: default-prefix facade ÷ no-prefix facade (ops/s)',
          ratio: ratioOf(getC, FACADE_PREFIX, FACADE),
        },
        {
          label: 'set: default-prefix facade ÷ no-prefix facade (ops/s)',
          ratio: ratioOf(setC, FACADE_PREFIX, FACADE),
        },
        {
          label: `getMany(${BATCH}) ÷ ${BATCH} single gets (ops/s)`,
          ratio: manyVsSingles,
          target: target('>=', 5, manyVsSingles),
        },
        {
          label: `getMany(${BATCH}): facade ÷ memjs (ops/s)`,
          ratio: ratioOf(manyC, FACADE, MEMJS),
        },
      ]
      return {
        group: 'memcached',
        description:
          `A memcached 1.6 on loopback started for the run; ${KEYS} keys of 32-character strings, ` +
          'every get a hit. Ops are awaited one at a time (one round trip each), so the numbers ' +
          'are dominated by loopback latency, as for an app.',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, keys: KEYS, batch: BATCH },
        comparisons,
        headlines,
        notes: [
          "The raw client is cachette's own memcached connection used directly: it sends the requests " +
            'a MemcachedCache without prefix sends (Get; Set with flags 0 and the expiry; getMany as ' +
            'quiet GetQs and a Noop in one write) with the bytes cachette stores (a 1-byte marker plus ' +
            'the string). It does the least the same job needs: it turns what it reads back into the ' +
            'string, knowing it is one (no type dispatch), and encodes nothing (values are encoded once ' +
            'up front). memjs sends the same bytes and reads them back the same way; memjs 1.3.2 has no multi-get, so its ' +
            `getMany is ${BATCH} concurrent gets. keyv stores JSON.`,
          `With the default CACHE_KEY_PREFIX ('${prefix}') every call also reads the server's namespace ` +
            'in the same write (one extra quiet get), which is what clear() without flush_all needs; ' +
            'that row shows its cost.',
        ],
      }
    } finally {
      await closeAll(closers, 'memcached', ctx.log)
    }
  },
}
