/**
 * TEST FIXTURE, not an emulator: a small in-memory server speaking just the
 * part of the Google Cloud Storage JSON API that `@google-cloud/storage` uses
 * for GoogleCloudStorageCache, over node:http on a free loopback port.
 *
 * Implemented: objects insert (`POST /upload/storage/v1/b/:bucket/o`, with
 * `uploadType=media` and `multipart` (multipart/related: JSON metadata, then
 * the media)), objects get (metadata, or the bytes with `alt=media`, with the
 * `x-goog-hash`/`x-goog-generation` headers the client checks), objects
 * delete, objects list (`prefix`, `maxResults`, `pageToken`/`nextPageToken`;
 * `fields` is ignored, whole resources are returned), buckets get and patch
 * (for lifecycle rules). Generations and metagenerations, the
 * `ifGenerationMatch`/`ifMetagenerationMatch` preconditions (412 on mismatch;
 * `ifGenerationMatch=0` means "must not exist"), `generation=` reads,
 * `customTime` and custom `metadata`, MD5/CRC32C checks of uploads that carry
 * them, and JSON errors as GCS writes them. Anything else answers 501.
 *
 * Controls for the tests: `hang(true)` accepts requests and never answers,
 * `failWith(503)` answers every request with that status, `stop()`/`start()`
 * (same port), the stored objects, and a log of the requests.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { freePort, HOST } from './process.js'

/** The bucket every server starts with. */
export const TEST_BUCKET = 'cachette-test'

/** An object as the server keeps it. */
export interface StoredObject {
  name: string
  bucket: string
  data: Buffer
  generation: string
  metageneration: string
  contentType: string
  customTime?: string
  metadata?: Record<string, string>
  md5Hash: string
  crc32c: string
  timeCreated: string
}

/** A bucket as the server keeps it. */
export interface StoredBucket {
  name: string
  metageneration: number
  /** Fields set by PATCH (`lifecycle`, ...). */
  fields: Record<string, unknown>
  objects: Map<string, StoredObject>
}

/** One request the server received. */
export interface LoggedRequest {
  method: string
  /** The path, percent-decoded. */
  path: string
  query: Record<string, string>
  headers: IncomingMessage['headers']
  /** An upload's object metadata (the JSON part of a multipart upload). */
  upload?: Record<string, unknown>
  /** The status answered, once answered. */
  status?: number
}

/** A running test server. */
export interface GcsServer {
  /** `http://127.0.0.1:PORT`, for `apiEndpoint`. */
  readonly endpoint: string
  readonly port: number
  /** Stops listening and drops every connection (held requests included). */
  stop(): Promise<void>
  /** Listens again on the same port, with the same objects. */
  start(): Promise<void>
  /** While on, requests are accepted and never answered. Turning it off drops the held ones. */
  hang(on: boolean): void
  /**
   * Answers every request (or those `match` picks) with this status, as a
   * GCS-style JSON error, until called with `undefined`.
   */
  failWith(status: number | undefined, match?: (request: LoggedRequest) => boolean): void
  /** The largest page `objects.list` returns, whatever `maxResults` asks. @default 1000 */
  maxPageSize: number
  /** The bucket's state (created on demand with {@link GcsServer.createBucket}). */
  bucket(name?: string): StoredBucket
  /** Creates an empty bucket. */
  createBucket(name: string): void
  /** The object, or `undefined`. */
  object(name: string, bucket?: string): StoredObject | undefined
  /** The object names, sorted, optionally under a prefix. */
  names(prefix?: string, bucket?: string): string[]
  /** Stores an object directly (a new generation), as another program would have written it. */
  putObject(
    name: string,
    data: Buffer,
    fields?: { customTime?: string; metadata?: Record<string, string>; bucket?: string },
  ): StoredObject
  /** Changes an object's metadata in place (as a metadata patch: the metageneration moves). */
  editObject(
    name: string,
    change: { customTime?: string; metadata?: Record<string, string> },
    bucket?: string,
  ): void
  /** Every request received since the start or the last {@link GcsServer.clearLog}. */
  readonly requests: LoggedRequest[]
  clearLog(): void
}

// ---- CRC32C (Castagnoli), as GCS reports it: base64 of the big-endian value ----

const CRC32C_TABLE = (() => {
  const table = new Int32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[i] = c
  }
  return table
})()

function crc32c(data: Buffer): string {
  let c = ~0
  for (let i = 0; i < data.length; i++) {
    c = (CRC32C_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  }
  const out = Buffer.alloc(4)
  out.writeUInt32BE((~c >>> 0) >>> 0)
  return out.toString('base64')
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest('base64')

// ---- errors ------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

const notFound = (message: string) => new HttpError(404, 'notFound', message)
const preconditionFailed = () =>
  new HttpError(
    412,
    'conditionNotMet',
    'At least one of the pre-conditions you specified did not hold.',
  )
const invalid = (message: string) => new HttpError(400, 'invalid', message)

const REASONS: Record<number, string> = {
  429: 'rateLimitExceeded',
  500: 'backendError',
  502: 'backendError',
  503: 'backendError',
  504: 'backendError',
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}

function sendError(res: ServerResponse, error: HttpError): void {
  sendJson(res, error.status, {
    error: {
      code: error.status,
      message: error.message,
      errors: [{ message: error.message, domain: 'global', reason: error.reason }],
    },
  })
}

// ---- multipart/related --------------------------------------------------------

interface Part {
  headers: Record<string, string>
  body: Buffer
}

function parseMultipart(body: Buffer, contentType: string): Part[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  const boundary = m?.[1] ?? m?.[2]
  if (boundary === undefined) throw invalid('multipart upload without a boundary')
  const delimiter = Buffer.from(`--${boundary}`)
  const parts: Part[] = []
  let at = body.indexOf(delimiter)
  if (at < 0) throw invalid('malformed multipart body')
  for (;;) {
    at += delimiter.length
    if (body[at] === 0x2d && body[at + 1] === 0x2d) break // the closing `--boundary--`
    if (body[at] === 0x0d && body[at + 1] === 0x0a) at += 2
    const headerEnd = body.indexOf('\r\n\r\n', at)
    if (headerEnd < 0) throw invalid('malformed multipart part')
    const headers: Record<string, string> = {}
    for (const line of body.subarray(at, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':')
      if (colon > 0)
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const start = headerEnd + 4
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), start)
    if (next < 0) throw invalid('multipart part without a closing boundary')
    parts.push({ headers, body: body.subarray(start, next) })
    at = next + 2
  }
  return parts
}

// ---- the server ---------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

const byName = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))

function checkObjectName(name: string): void {
  const bytes = Buffer.byteLength(name)
  if (bytes === 0 || bytes > 1024) {
    throw invalid(`The object name must be 1-1024 bytes of UTF-8, got ${bytes}`)
  }
  if (/[\r\n]/.test(name) || name === '.' || name === '..') {
    throw invalid('Object name contains characters that are not allowed')
  }
}

/** Starts a server with one empty bucket, {@link TEST_BUCKET}. */
export async function startGcsServer(): Promise<GcsServer> {
  const port = await freePort()
  const buckets = new Map<string, StoredBucket>()
  const requests: LoggedRequest[] = []
  const sockets = new Set<Socket>()
  let held: ServerResponse[] = []
  let hanging = false
  let failing: number | undefined
  let failMatch: ((request: LoggedRequest) => boolean) | undefined
  let nextGeneration = 1_700_000_000_000_000

  const getBucket = (name: string): StoredBucket => {
    const b = buckets.get(name)
    if (b === undefined) throw notFound('The specified bucket does not exist.')
    return b
  }
  const createBucket = (name: string) => {
    buckets.set(name, { name, metageneration: 1, fields: {}, objects: new Map() })
  }
  createBucket(TEST_BUCKET)

  const store = (
    bucket: StoredBucket,
    name: string,
    data: Buffer,
    fields: { contentType?: string; customTime?: string; metadata?: Record<string, string> },
  ): StoredObject => {
    const obj: StoredObject = {
      name,
      bucket: bucket.name,
      data,
      generation: String(nextGeneration++),
      metageneration: '1',
      contentType: fields.contentType ?? 'application/octet-stream',
      md5Hash: md5(data),
      crc32c: crc32c(data),
      timeCreated: new Date().toISOString(),
    }
    if (fields.customTime !== undefined) obj.customTime = fields.customTime
    if (fields.metadata !== undefined) obj.metadata = fields.metadata
    bucket.objects.set(name, obj)
    return obj
  }

  const resource = (o: StoredObject) => ({
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `http://${HOST}:${port}/storage/v1/b/${o.bucket}/o/${encodeURIComponent(o.name)}`,
    mediaLink: `http://${HOST}:${port}/download/storage/v1/b/${o.bucket}/o/${encodeURIComponent(o.name)}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: o.metageneration,
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: `${o.generation}/${o.metageneration}`,
    timeCreated: o.timeCreated,
    updated: o.timeCreated,
    ...(o.customTime === undefined ? {} : { customTime: o.customTime }),
    ...(o.metadata === undefined ? {} : { metadata: o.metadata }),
  })

  const bucketResource = (b: StoredBucket) => ({
    kind: 'storage#bucket',
    id: b.name,
    name: b.name,
    location: 'US',
    storageClass: 'STANDARD',
    metageneration: String(b.metageneration),
    ...b.fields,
  })

  /** `ifGenerationMatch` / `ifMetagenerationMatch` against the current object (or none). */
  const checkPreconditions = (query: URLSearchParams, current: StoredObject | undefined) => {
    const gen = query.get('ifGenerationMatch')
    if (gen !== null) {
      if (gen === '0' ? current !== undefined : current?.generation !== gen) {
        throw preconditionFailed()
      }
    }
    const notGen = query.get('ifGenerationNotMatch')
    if (notGen !== null && current !== undefined && current.generation === notGen) {
      throw preconditionFailed()
    }
    const meta = query.get('ifMetagenerationMatch')
    if (meta !== null && current?.metageneration !== meta) throw preconditionFailed()
  }

  /** The object named, at `generation=` if given; 404 otherwise. */
  const findObject = (b: StoredBucket, name: string, query: URLSearchParams): StoredObject => {
    const obj = b.objects.get(name)
    const generation = query.get('generation')
    if (obj === undefined || (generation !== null && generation !== obj.generation)) {
      throw notFound(`No such object: ${b.name}/${name}`)
    }
    return obj
  }

  const insert = async (
    req: IncomingMessage,
    b: StoredBucket,
    query: URLSearchParams,
    logged: LoggedRequest,
  ) => {
    const body = await readBody(req)
    const uploadType = query.get('uploadType')
    let meta: Record<string, unknown> = {}
    let data: Buffer
    let contentType = req.headers['content-type'] ?? 'application/octet-stream'
    if (uploadType === 'multipart') {
      const parts = parseMultipart(body, contentType)
      if (parts.length !== 2) throw invalid(`multipart upload with ${parts.length} parts`)
      const [metaPart, mediaPart] = parts as [Part, Part]
      try {
        meta = JSON.parse(metaPart.body.toString('utf8')) as Record<string, unknown>
      } catch {
        throw invalid('the metadata part is not JSON')
      }
      logged.upload = meta
      data = Buffer.from(mediaPart.body)
      contentType =
        (meta.contentType as string | undefined) ??
        mediaPart.headers['content-type'] ??
        'application/octet-stream'
    } else if (uploadType === 'media') {
      data = body
    } else {
      throw new HttpError(501, 'notImplemented', `test server: uploadType=${uploadType}`)
    }
    const name = query.get('name') ?? (meta.name as string | undefined)
    if (name === undefined) throw invalid('Required parameter: name')
    checkObjectName(name)
    if (typeof meta.md5Hash === 'string' && meta.md5Hash !== md5(data)) {
      throw invalid(
        `Provided MD5 hash "${meta.md5Hash}" doesn't match calculated MD5 hash "${md5(data)}".`,
      )
    }
    if (typeof meta.crc32c === 'string' && meta.crc32c !== crc32c(data)) {
      throw invalid(`Provided CRC32C "${meta.crc32c}" doesn't match calculated CRC32C.`)
    }
    const customTime = meta.customTime
    if (
      customTime !== undefined &&
      (typeof customTime !== 'string' || !Number.isFinite(Date.parse(customTime)))
    ) {
      throw invalid(`Invalid value for customTime: ${String(customTime)}`)
    }
    let metadata: Record<string, string> | undefined
    if (meta.metadata !== undefined && meta.metadata !== null) {
      metadata = {}
      for (const [k, v] of Object.entries(meta.metadata as Record<string, unknown>)) {
        if (v !== null) metadata[k] = String(v)
      }
    }
    checkPreconditions(query, b.objects.get(name))
    return resource(
      store(b, name, data, {
        contentType,
        ...(customTime === undefined
          ? {}
          : { customTime: new Date(customTime as string).toISOString() }),
        ...(metadata === undefined ? {} : { metadata }),
      }),
    )
  }

  const list = (b: StoredBucket, query: URLSearchParams) => {
    const prefix = query.get('prefix') ?? ''
    const asked = Number(query.get('maxResults') ?? 1000)
    const size = Math.max(
      1,
      Math.min(Number.isFinite(asked) ? asked : 1000, 1000, server.maxPageSize),
    )
    const token = query.get('pageToken')
    const after = token === null ? undefined : Buffer.from(token, 'base64url').toString('utf8')
    const names = [...b.objects.keys()]
      .filter((n) => n.startsWith(prefix) && (after === undefined || byName(n, after) > 0))
      .sort(byName)
    const page = names.slice(0, size)
    const out: Record<string, unknown> = { kind: 'storage#objects' }
    if (page.length > 0) out.items = page.map((n) => resource(b.objects.get(n) as StoredObject))
    if (names.length > size) {
      out.nextPageToken = Buffer.from(page[page.length - 1] as string).toString('base64url')
    }
    return out
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${HOST}:${port}`)
    const method = req.method ?? 'GET'
    const segments = url.pathname.split('/').slice(1)
    const decoded = segments.map((s) => decodeURIComponent(s))
    const logged: LoggedRequest = {
      method,
      path: `/${decoded.join('/')}`,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
    }
    requests.push(logged)
    res.once('finish', () => {
      logged.status = res.statusCode
    })
    if (hanging) {
      held.push(res)
      return
    }
    if (failing !== undefined && (failMatch === undefined || failMatch(logged))) {
      req.resume()
      throw new HttpError(
        failing,
        REASONS[failing] ?? 'error',
        `test server: failing with ${failing}`,
      )
    }
    const query = url.searchParams
    // /upload/storage/v1/b/:bucket/o
    if (segments[0] === 'upload' && segments[1] === 'storage' && segments[4] !== undefined) {
      if (method !== 'POST' || segments[5] !== 'o' || segments.length !== 6) {
        throw new HttpError(501, 'notImplemented', `test server: ${method} ${url.pathname}`)
      }
      const b = getBucket(decoded[4] as string)
      sendJson(res, 200, await insert(req, b, query, logged))
      return
    }
    // /storage/v1/b/:bucket[/o[/:object]] and /download/storage/v1/b/:bucket/o/:object
    const base = segments[0] === 'download' ? 1 : 0
    if (segments[base] !== 'storage' || segments[base + 1] !== 'v1' || segments[base + 2] !== 'b') {
      throw new HttpError(501, 'notImplemented', `test server: ${method} ${url.pathname}`)
    }
    const rest = segments.slice(base + 3)
    const b = getBucket(decodeURIComponent(rest[0] ?? ''))
    if (rest.length === 1) {
      if (method === 'GET') return sendJson(res, 200, bucketResource(b))
      if (method === 'PATCH') {
        const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as Record<
          string,
          unknown
        >
        const want = query.get('ifMetagenerationMatch')
        if (want !== null && want !== String(b.metageneration)) throw preconditionFailed()
        for (const [k, v] of Object.entries(body)) {
          if (v === null) delete b.fields[k]
          else b.fields[k] = v
        }
        b.metageneration++
        return sendJson(res, 200, bucketResource(b))
      }
    }
    if (rest[1] === 'o' && rest.length === 2 && method === 'GET') {
      return sendJson(res, 200, list(b, query))
    }
    if (rest[1] === 'o' && rest.length === 3) {
      const name = decodeURIComponent(rest[2] as string)
      if (method === 'GET') {
        const obj = findObject(b, name, query)
        checkPreconditions(query, obj)
        if (query.get('alt') !== 'media') return sendJson(res, 200, resource(obj))
        res.writeHead(200, {
          'content-type': obj.contentType,
          'content-length': obj.data.length,
          'x-goog-generation': obj.generation,
          'x-goog-metageneration': obj.metageneration,
          'x-goog-hash': `crc32c=${obj.crc32c},md5=${obj.md5Hash}`,
          'x-goog-stored-content-encoding': 'identity',
          'x-goog-stored-content-length': obj.data.length,
          etag: `"${obj.md5Hash}"`,
        })
        res.end(obj.data)
        return
      }
      if (method === 'DELETE') {
        const obj = findObject(b, name, query)
        checkPreconditions(query, obj)
        b.objects.delete(name)
        res.writeHead(204)
        res.end()
        return
      }
    }
    throw new HttpError(501, 'notImplemented', `test server: ${method} ${url.pathname}`)
  }

  const httpServer = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      req.resume()
      if (error instanceof HttpError) sendError(res, error)
      else sendError(res, new HttpError(500, 'backendError', String(error)))
    })
  })
  httpServer.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  httpServer.keepAliveTimeout = 1000

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject)
      httpServer.listen(port, HOST, () => {
        httpServer.off('error', reject)
        resolve()
      })
    })

  const dropHeld = () => {
    for (const res of held) res.socket?.destroy()
    held = []
  }

  const server: GcsServer = {
    endpoint: `http://${HOST}:${port}`,
    port,
    maxPageSize: 1000,
    requests,
    async stop() {
      dropHeld()
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
    start: listen,
    hang(on) {
      hanging = on
      if (!on) dropHeld()
    },
    failWith(status, match) {
      failing = status
      failMatch = match
    },
    bucket(name = TEST_BUCKET) {
      return getBucket(name)
    },
    createBucket,
    object(name, bucket = TEST_BUCKET) {
      return getBucket(bucket).objects.get(name)
    },
    names(prefix = '', bucket = TEST_BUCKET) {
      return [...getBucket(bucket).objects.keys()].filter((n) => n.startsWith(prefix)).sort(byName)
    },
    putObject(name, data, fields = {}) {
      const { bucket = TEST_BUCKET, ...rest } = fields
      return store(getBucket(bucket), name, data, rest)
    },
    editObject(name, change, bucket = TEST_BUCKET) {
      const obj = getBucket(bucket).objects.get(name)
      if (obj === undefined) throw new Error(`test server: no object ${name}`)
      if (change.customTime !== undefined) obj.customTime = change.customTime
      if (change.metadata !== undefined) obj.metadata = { ...obj.metadata, ...change.metadata }
      obj.metageneration = String(Number(obj.metageneration) + 1)
    },
    clearLog() {
      requests.length = 0
    },
  }
  await listen()
  return server
}
