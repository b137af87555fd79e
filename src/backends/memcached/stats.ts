/**
 * Internal: what memcached says about itself (`stats`, `stats settings`),
 * asked over a short-lived connection per server.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { type ConnectionOptions as TlsOptions, connect as tlsConnect } from 'node:tls'
import { BackendError, BackendTimeoutError } from '../../core/errors.js'
import {
  type ConnectionSettings,
  MemcachedAuthError,
  MemcachedUnavailableError,
  type ServerAddress,
} from './connection.js'
import { HEADER, Op, type Request, Status, sizeOf, statusText, writeRequest } from './protocol.js'

/** The binary protocol's STAT opcode; only {@link serverStats} sends it. */
const STAT_OPCODE = 0x10

/** The `stats` figures `MemcachedCache.stats()` adds up over the servers, in this order. */
const SUMMED_STATS = [
  'curr_items',
  'total_items',
  'bytes',
  'limit_maxbytes',
  'get_hits',
  'get_misses',
  'cmd_get',
  'cmd_set',
  'evictions',
  'curr_connections',
]

/**
 * One server's general-purpose `stats`, over a short-lived connection of its
 * own: a STAT request is answered by one response per figure and an empty
 * one to end them, which the pipelined `Connection` (one answer per
 * request) cannot match. With credentials, SASL PLAIN goes first. Fails
 * within `connectTimeout + commandTimeout`.
 */
export function serverStats(
  address: ServerAddress,
  settings: ConnectionSettings,
  group?: string,
): Promise<Map<string, string>> {
  const label = address.label
  return new Promise((resolve, reject) => {
    const { host, port, path } = address
    const socket: Socket =
      settings.tls !== undefined
        ? tlsConnect({ ...settings.tls, host, port, path } as TlsOptions)
        : path !== undefined
          ? netConnect({ path })
          : netConnect({ host: host as string, port: port as number })
    const figures = new Map<string, string>()
    let pending: Buffer = Buffer.alloc(0)
    let settled = false
    const finish = (error?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error === undefined) resolve(figures)
      else reject(error)
    }
    const down = (message: string, cause?: unknown): void =>
      finish(new MemcachedUnavailableError(`memcached ${label}: ${message}`, { cause }))
    const limit = settings.connectTimeout + settings.commandTimeout
    const timer = setTimeout(() => {
      const message = `no stats within ${limit} ms`
      down(message, new BackendTimeoutError(message, limit))
    }, limit)
    socket.on('error', (error) => down(error.message, error))
    socket.on('close', () => down('connection closed by the server'))
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= HEADER) {
        if (pending[0] !== 0x81) return down('protocol error: bad response magic')
        const keyLength = pending.readUInt16BE(2)
        const extras = pending[4] as number
        const status = pending.readUInt16BE(6)
        const body = pending.readUInt32BE(8)
        if (pending.length < HEADER + body) return
        const opcode = pending[1]
        const key = pending.subarray(HEADER + extras, HEADER + extras + keyLength)
        const value = pending.subarray(HEADER + extras + keyLength, HEADER + body)
        pending = pending.subarray(HEADER + body)
        if (status === Status.AuthError) {
          const user = JSON.stringify(settings.username ?? '')
          return finish(
            new MemcachedAuthError(
              opcode === Op.SaslAuth
                ? `memcached ${label} rejected the credentials of user ${user}`
                : `memcached ${label} requires SASL authentication; set CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD`,
            ),
          )
        }
        if (status !== Status.Ok) {
          return finish(
            new BackendError(
              'ERR_CACHETTE_BACKEND_FAILED',
              `memcached ${label}: stats answered ${statusText(status)}`,
            ),
          )
        }
        if (opcode !== STAT_OPCODE) continue
        if (keyLength === 0) return finish()
        figures.set(key.toString('latin1'), value.toString('latin1'))
      }
    })
    const requests: Request[] = []
    if (settings.username !== undefined && settings.password !== undefined) {
      requests.push({
        opcode: Op.SaslAuth,
        key: Buffer.from('PLAIN'),
        value: Buffer.from(`\u0000${settings.username}\u0000${settings.password}`),
      })
    }
    requests.push(
      group === undefined
        ? { opcode: STAT_OPCODE }
        : { opcode: STAT_OPCODE, key: Buffer.from(group, 'latin1') },
    )
    const out = Buffer.alloc(requests.reduce((n, r) => n + sizeOf(r), 0))
    let at = 0
    requests.forEach((r, i) => {
      at = writeRequest(out, at, r, i + 1)
    })
    // Written before the connection is up: the socket sends it once connected.
    socket.write(out)
  })
}

/**
 * The figures of `MemcachedCache.stats()` from each server's answer (in
 * `servers` order; a rejected one is a server that did not answer): the
 * {@link SUMMED_STATS} added up, `servers`, the first server's `version`
 * and `down`. Throws the first failure when no server answered.
 */
export function summedStats(
  servers: readonly string[],
  settled: readonly PromiseSettledResult<Map<string, string>>[],
): Record<string, string | number> {
  const answered = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const first = settled.find((r) => r.status === 'rejected')
  if (answered.length === 0 && first !== undefined) throw first.reason
  const out: Record<string, string | number> = { servers: servers.length }
  const version = answered[0]?.get('version')
  if (version !== undefined) out.version = version
  for (const name of SUMMED_STATS) {
    const values = answered.map((f) => f.get(name)).filter((v) => v !== undefined)
    if (values.length > 0) out[name] = values.reduce((sum, v) => sum + Number(v), 0)
  }
  const down = servers.filter((_, i) => settled[i]?.status === 'rejected')
  if (down.length > 0) out.down = down.join(', ')
  return out
}
