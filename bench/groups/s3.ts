/**
 * s3: get (hit) and set on a local S3 server (s3rver) started for the run,
 * through cachette's S3Cache (facade and backend), against the raw
 * `@aws-sdk/client-s3` S3Client sending the same requests with the same
 * bytes (the limit), and, for get, a TieredCache over S3Cache whose first
 * tier answers from memory.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { S3Cache } from '../../src/backends/s3/index.js'
import { Cache, encodeValue, TieredCache, v8Serializer } from '../../src/index.js'
import { S3_CREDENTIALS, startS3 } from '../../test/servers/s3.js'
import { closeAll, type Group, type GroupContext } from '../lib/group.js'
import { checkReads, compareOp, key, prefill, type Subject, TTL_S, value } from '../lib/kv.js'
import { type Comparison, OPS_PER_SEC, opLoop, ratioOf } from '../lib/measure.js'
import { formatRatio, type GroupResult, type Headline, target } from '../lib/report.js'

const RAW = 'raw @aws-sdk/client-s3 S3Client (same requests, same bytes)'
const FACADE = 'cachette Cache facade (S3Cache, no prefix)'
const BACKEND = 'cachette S3Cache backend (no prefix)'
const TIERED = 'cachette TieredCache over S3Cache (first-tier memory hit)'

const BUCKET = 'cache'
/**
 * Distinct keys: fewer than the other key-value groups' 1,024, because every
 * request to s3rver costs milliseconds and each contender prefills them all.
 * A power of two, so `i & MASK` cycles through them.
 */
const KEYS = 64
const MASK = KEYS - 1
const FIRST_TIMEOUT_S = 5

/** The i-th key and value, cycling over this group's {@link KEYS}. */
const k = (i: number): string => key(i & MASK)
const v = (i: number): string => value(i & MASK)

export const s3Group: Group = {
  name: 's3',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 15
    const sliceMs = ctx.quick ? 200 : 600
    const server = await startS3([BUCKET])
    const { endpoint } = server
    const closers: (() => unknown)[] = [() => server.destroy()]
    try {
      const raw = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3_CREDENTIALS,
      })
      closers.push(() => raw.destroy())
      // No key prefix: raw, facade, backend and tiered address the same object names (the keys).
      const cache = new Cache({
        CACHE_TYPE: 'S3Cache',
        CACHE_S3_BUCKET: BUCKET,
        CACHE_S3_ENDPOINT_URL: endpoint,
        CACHE_KEY_PREFIX: '',
        CACHE_DEFAULT_TIMEOUT: TTL_S,
        CACHE_OPTIONS: { credentials: S3_CREDENTIALS },
      })
      closers.push(() => cache.close())
      const backend = new S3Cache({
        bucket: BUCKET,
        endpointUrl: endpoint,
        credentials: S3_CREDENTIALS,
        defaultTimeout: TTL_S,
      })
      closers.push(() => backend.close())
      const second = new S3Cache({
        bucket: BUCKET,
        endpointUrl: endpoint,
        credentials: S3_CREDENTIALS,
        defaultTimeout: TTL_S,
      })
      const tiered = new TieredCache({ second, firstTimeout: FIRST_TIMEOUT_S })
      closers.push(() => tiered.close())
      const facadeBackend = await cache.ready()
      if (!(facadeBackend instanceof S3Cache) || facadeBackend.keyPrefix !== '') {
        throw new Error('s3: the facade is not an S3Cache without a key prefix')
      }
      const encoded = Array.from({ length: KEYS }, (_, i) => encodeValue(value(i), v8Serializer))
      const subjects: Subject[] = [
        {
          name: RAW,
          role: 'limit',
          get: async (i) => {
            const out = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: k(i) }))
            const bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array()
            return Buffer.from(bytes).toString('utf8', 1)
          },
          set: (i) =>
            raw.send(
              new PutObjectCommand({
                Bucket: BUCKET,
                Key: k(i),
                Body: encoded[i & MASK] as Buffer,
                ContentType: 'application/octet-stream',
                Metadata: { 'cachette-expires': String(Date.now() + TTL_S * 1000) },
              }),
            ),
        },
        {
          name: FACADE,
          role: 'subject',
          get: (i) => cache.get(k(i)),
          set: (i) => cache.set(k(i), v(i), TTL_S),
        },
        {
          name: BACKEND,
          role: 'subject',
          get: (i) => backend.get(k(i)),
          set: (i) => backend.set(k(i), v(i), TTL_S),
        },
      ]
      ctx.log(`s3: prefilling ${KEYS} keys per contender`)
      await prefill(subjects, KEYS)
      /** Reads every key through the tiered cache: refills its first tier from S3. */
      const primeTiered = async (): Promise<void> => {
        for (let i = 0; i < KEYS; i++) await tiered.get(k(i))
      }
      await primeTiered()
      await checkReads(
        's3',
        [...subjects, { name: TIERED, get: (i: number) => tiered.get(k(i)) }],
        (got) => got === value(7),
      )
      const primed = tiered.first.size
      if (primed !== KEYS) {
        throw new Error(`s3: the tiered cache's first tier holds ${primed} of ${KEYS} keys`)
      }
      const comparisons: Comparison[] = []
      // The first tier keeps entries FIRST_TIMEOUT_S seconds: each tiered slice starts by
      // refilling it (untimed), so every timed get is a memory hit.
      const tieredLoop = opLoop((i) => tiered.get(k(i)), {
        sliceMs,
        batch: 1000,
        unit: OPS_PER_SEC,
      })
      const common = { group: 's3', subjects, rounds, sliceMs, batch: 10, log: ctx.log }
      comparisons.push(
        await compareOp({
          ...common,
          op: 'get',
          extra: [
            {
              name: TIERED,
              role: 'subject',
              sample: async () => {
                await primeTiered()
                return tieredLoop()
              },
            },
          ],
          pairs: [
            [FACADE, RAW],
            [BACKEND, RAW],
            [TIERED, RAW],
          ],
        }),
      )
      comparisons.push(
        await compareOp({
          ...common,
          op: 'set',
          pairs: [
            [FACADE, RAW],
            [BACKEND, RAW],
          ],
        }),
      )
      const [getC, setC] = comparisons as [Comparison, Comparison]
      const getVsRaw = ratioOf(getC, FACADE, RAW)
      const setVsRaw = ratioOf(setC, FACADE, RAW)
      const tieredVsRaw = ratioOf(getC, TIERED, RAW)
      const headlines: Headline[] = [
        {
          label: 'get: facade ÷ raw SDK (ops/s)',
          ratio: getVsRaw,
          target: target('>=', 0.9, getVsRaw),
        },
        {
          label: 'set: facade ÷ raw SDK (ops/s)',
          ratio: setVsRaw,
          target: target('>=', 0.9, setVsRaw),
        },
        { label: 'get: tiered (memory hit) ÷ raw SDK (ops/s)', ratio: tieredVsRaw },
      ]
      return {
        group: 's3',
        description:
          `An s3rver (the S3 REST API over files on disk, one Node process) on loopback started for ` +
          `the run; ${KEYS} keys of 32-character strings, no key prefix, every get a hit. Ops are ` +
          'awaited one at a time (one HTTP request each), so the numbers are dominated by the ' +
          "server's milliseconds per request, not by the client.",
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, keys: KEYS, firstTimeout: FIRST_TIMEOUT_S },
        comparisons,
        headlines,
        notes: [
          'The raw SDK is an `@aws-sdk/client-s3` S3Client with the same endpoint, region, path-style ' +
            'addressing and credentials, sending the requests an S3Cache without prefix sends ' +
            '(GetObject, reading the body as bytes; PutObject with the octet-stream content type and ' +
            'the `cachette-expires` metadata) with the bytes cachette stores (a 1-byte marker plus the ' +
            'string). It does the least the same job needs: it turns what it reads back into the ' +
            'string, knowing it is one (no expiry check, no type dispatch), encodes nothing (values ' +
            'are encoded once up front) and sets no deadline (cachette races every call against a ' +
            '2 s timer and passes an abort signal).',
          `The tiered row is a TieredCache (firstTimeout ${FIRST_TIMEOUT_S} s) over its own S3Cache: ` +
            'each of its slices starts, untimed, by reading every key once (refilling the first tier ' +
            'from S3), so every timed get is a first-tier (in-process memory) hit that never reaches ' +
            `S3 (${formatRatio(tieredVsRaw.median)} the raw SDK's rate). An app pays one S3 read per key ` +
            `per ${FIRST_TIMEOUT_S} s at most, and gets every other read of that key at this rate.`,
        ],
      }
    } finally {
      await closeAll(closers, 's3', ctx.log)
    }
  },
}
