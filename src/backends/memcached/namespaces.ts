/**
 * Internal: the per-server namespaces that let `clear()` forget a prefixed
 * cache's keys without flushing the servers. With a key prefix, each server
 * holds a random id at `prefix + '~ns'`, and data keys are
 * `prefix + id + ':' + key`; `clear()` writes a new id. Ids are random,
 * never counters, so a lost namespace key can never bring back old entries.
 */
import { randomBytes } from 'node:crypto'
import { BackendError } from '../../core/errors.js'
import type { Connection } from './connection.js'
import { Op, type Request, type Response, Status, storeExtras } from './protocol.js'

/** The namespaces of one cache: each server's current id, learnt on first use. */
export class Namespaces {
  /** `prefix + '~ns'`, the key of each server's namespace id; `undefined` without a prefix. */
  readonly key: Buffer | undefined
  readonly #conns: readonly Connection[]
  readonly #prefix: string
  readonly #name: string
  readonly #gens: (string | undefined)[]
  readonly #genPending: (Promise<string> | undefined)[]

  /**
   * @param conns - one connection per server, in server order
   * @param prefix - the cache's key prefix (`''`: no namespaces, keys are sent as they are)
   * @param name - the backend's class name, for error messages
   */
  constructor(conns: readonly Connection[], prefix: string, name: string) {
    this.#conns = conns
    this.#prefix = prefix
    this.#name = name
    this.key = prefix === '' ? undefined : Buffer.from(`${prefix}~ns`, 'latin1')
    this.#gens = conns.map(() => undefined)
    this.#genPending = conns.map(() => undefined)
  }

  /** The key prefix plus the server's namespace (`prefix + gen + ':'`), or `''` without a prefix. */
  #ns(gen: string): string {
    return gen === '' ? '' : `${this.#prefix}${gen}:`
  }

  /** The server's namespace, created if it has none (first use, eviction, restart). */
  #generation(server: number): string | Promise<string> {
    const known = this.#gens[server]
    if (known !== undefined) return known
    let pending = this.#genPending[server]
    if (pending === undefined) {
      pending = this.#loadGeneration(server).finally(() => {
        this.#genPending[server] = undefined
      })
      this.#genPending[server] = pending
    }
    return pending
  }

  async #loadGeneration(server: number): Promise<string> {
    const conn = this.#conns[server] as Connection
    const key = this.key as Buffer
    for (let attempt = 0; attempt < 3; attempt++) {
      const [found] = await conn.exec([{ opcode: Op.Get, key }])
      if (found?.status === Status.Ok) return this.#remember(server, found.value)
      const fresh = randomBytes(6).toString('base64url')
      const [added] = await conn.exec([
        { opcode: Op.Add, key, extras: storeExtras(0), value: Buffer.from(fresh, 'latin1') },
      ])
      if (added?.status === Status.Ok) return this.#remember(server, Buffer.from(fresh, 'latin1'))
    }
    throw new BackendError(
      'ERR_CACHETTE_BACKEND_FAILED',
      `${this.#name}: could not read the namespace on ${conn.address.label}`,
    )
  }

  #remember(server: number, value: Buffer): string {
    const gen = value.toString('latin1')
    this.#gens[server] = gen
    return gen
  }

  /**
   * Runs the requests `build` makes for the given namespace on one server.
   * With a key prefix, the namespace is read in the same write (a `GetQ`
   * ahead of the requests): if another process cleared it meanwhile, the
   * requests are built again for the new one and resent. Resolves the
   * responses to `build`'s requests.
   */
  async onServer(server: number, build: (ns: string) => Request[]): Promise<(Response | null)[]> {
    const conn = this.#conns[server] as Connection
    const nsKey = this.key
    if (nsKey === undefined) return conn.exec(build(''))
    for (let attempt = 0; attempt < 3; attempt++) {
      const known = this.#generation(server)
      const gen = typeof known === 'string' ? known : await known
      const responses = await conn.exec([{ opcode: Op.GetQ, key: nsKey }, ...build(this.#ns(gen))])
      const current = responses[0]
      if (current?.status === Status.Ok && current.value.toString('latin1') === gen) {
        return responses.slice(1)
      }
      // Cleared elsewhere, evicted or the server restarted: learn the namespace and go again.
      if (this.#gens[server] === gen) this.#gens[server] = undefined
      if (current?.status === Status.Ok) this.#remember(server, current.value)
    }
    throw new BackendError(
      'ERR_CACHETTE_BACKEND_FAILED',
      `${this.#name}: the namespace on ${conn.address.label} keeps changing`,
    )
  }

  /**
   * Starts a new namespace on `server` (a fresh random id), so every key of
   * this cache there reads as a miss, in every process. Resolves the
   * server's answer; the new id is used from now on only if it is `Ok`.
   */
  async renew(server: number): Promise<Response | null | undefined> {
    const conn = this.#conns[server] as Connection
    const fresh = Buffer.from(randomBytes(6).toString('base64url'), 'latin1')
    const [r] = await conn.exec([
      { opcode: Op.Set, key: this.key as Buffer, extras: storeExtras(0), value: fresh },
    ])
    if (r?.status === Status.Ok) this.#remember(server, fresh)
    return r
  }
}
