/**
 * keyv: get (hit) and set through cachette's Cache facade on KeyvCache, over
 * @keyv/sqlite (a temporary file) and @keyv/postgres (a PostgreSQL server
 * started for the run), against the raw Keyv adapter storing the same
 * string (the limit), and keyv v5 itself on the same adapter (its JSON).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import KeyvPostgres from '@keyv/postgres'
import KeyvSqlite from '@keyv/sqlite'
import { Keyv } from 'keyv'
import { KeyvCache } from '../../src/backends/keyv/index.js'
import { Cache, encodeValue, v8Serializer } from '../../src/index.js'
import { type PostgresServer, startPostgres } from '../../test/servers/postgres.js'
import { closeAll, type Group, type GroupContext } from '../lib/group.js'
import {
  checkReads,
  compareGetSet,
  KEYS,
  key,
  MASK,
  prefill,
  type Subject,
  TTL_S,
  value,
} from '../lib/kv.js'
import { type Comparison, ratioOf } from '../lib/measure.js'
import type { GroupResult, Headline } from '../lib/report.js'

interface Store {
  readonly label: string
  /** A fresh adapter on its own table. */
  readonly adapter: (table: string) => KeyvSqlite | KeyvPostgres
  /** Whether every adapter of the store shares one connection pool (one disconnect ends it). */
  readonly shared?: boolean
}

const rawName = (s: Store) => `raw ${s.label} adapter (same string)`
const facadeName = (s: Store) => `cachette Cache facade (KeyvCache on ${s.label})`
const keyvName = (s: Store) => `keyv v5 + ${s.label}`

export const keyvGroup: Group = {
  name: 'keyv',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 9
    const sliceMs = ctx.quick ? 30 : 300
    const closers: (() => unknown)[] = []
    const dir = mkdtempSync(join(os.tmpdir(), 'cachette-bench-keyv-'))
    closers.push(() => rmSync(dir, { recursive: true, force: true }))
    try {
      ctx.log('keyv: starting PostgreSQL')
      const pg: PostgresServer = await startPostgres()
      closers.push(() => pg.destroy())
      const stores: Store[] = [
        {
          label: '@keyv/sqlite',
          adapter: (table) =>
            new KeyvSqlite({ uri: `sqlite://${join(dir, `${table}.sqlite`)}`, table }),
        },
        {
          label: '@keyv/postgres',
          adapter: (table) => new KeyvPostgres({ uri: pg.uri, table, max: 2 }),
          shared: true,
        },
      ]
      // What KeyvCache stores for value(i): the expiry, then cachette's bytes in base64.
      // The expiry is taken at each write, as KeyvCache does: SQLite skips a
      // write that leaves a row as it was, so rewriting one fixed string would
      // measure less work than the facade does.
      const encoded = Array.from({ length: KEYS }, (_, i) =>
        encodeValue(value(i), v8Serializer).toString('base64'),
      )
      const packed = (i: number) => `${Date.now() + TTL_S * 1000}:${encoded[i & MASK]}`
      const comparisons: Comparison[] = []
      const headlines: Headline[] = []
      for (const store of stores) {
        const raw = store.adapter('raw')
        const facadeAdapter = store.adapter('facade')
        const keyvAdapter = store.adapter('keyv')
        const cache = new Cache({
          CACHE_TYPE: KeyvCache,
          CACHE_OPTIONS: { store: facadeAdapter, disconnectOnClose: false },
        })
        const kv = new Keyv({ store: keyvAdapter })
        // @keyv/postgres shares one pool per URI, ended by the first disconnect.
        closers.push(() => raw.disconnect())
        if (store.shared !== true) {
          closers.push(() => facadeAdapter.disconnect())
          closers.push(() => keyvAdapter.disconnect())
        }
        closers.push(() => cache.close())
        const subjects: Subject[] = [
          {
            name: rawName(store),
            role: 'limit',
            get: (i) => raw.get(key(i)),
            set: (i) => raw.set(key(i), packed(i)),
          },
          {
            name: facadeName(store),
            role: 'subject',
            get: (i) => cache.get(key(i)),
            set: (i) => cache.set(key(i), value(i), TTL_S),
          },
          {
            name: keyvName(store),
            role: 'peer',
            get: (i) => kv.get(key(i)),
            set: (i) => kv.set(key(i), value(i), TTL_S * 1000),
          },
        ]
        const group = `keyv-${store.label.slice('@keyv/'.length)}`
        ctx.log(`${group}: prefill`)
        await prefill(subjects)
        await checkReads(
          group,
          subjects,
          (got) => got === value(7) || (typeof got === 'string' && got.endsWith(`:${encoded[7]}`)),
        )
        const [getC, setC] = await compareGetSet({
          group,
          subjects,
          rounds,
          sliceMs,
          batch: 20,
          pairs: [
            [facadeName(store), rawName(store)],
            [facadeName(store), keyvName(store)],
          ],
          log: ctx.log,
        })
        comparisons.push(getC, setC)
        headlines.push(
          {
            label: `get on ${store.label}: facade ÷ raw adapter (ops/s)`,
            ratio: ratioOf(getC, facadeName(store), rawName(store)),
          },
          {
            label: `set on ${store.label}: facade ÷ raw adapter (ops/s)`,
            ratio: ratioOf(setC, facadeName(store), rawName(store)),
          },
          {
            label: `get on ${store.label}: facade ÷ keyv (ops/s)`,
            ratio: ratioOf(getC, facadeName(store), keyvName(store)),
          },
        )
      }
      return {
        group: 'keyv',
        description:
          `KeyvCache through the Cache facade on @keyv/sqlite (a temporary file) and @keyv/postgres (a PostgreSQL server ` +
          `started for the run, fsync off), ${KEYS} keys of 32-character strings, every get a hit, ops awaited one at a time.`,
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, keys: KEYS },
        comparisons,
        headlines,
        notes: [
          'The raw adapter stores the string KeyvCache stores (expiry, then cachette bytes in base64), ' +
            'so the ratio is what the facade, the encoding and the expiry check cost on top of the adapter; ' +
            'keyv stores its JSON on its own table of the same database.',
        ],
      }
    } finally {
      await closeAll(closers, 'keyv', ctx.log)
    }
  },
}
