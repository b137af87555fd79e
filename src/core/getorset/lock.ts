/**
 * The distributed lock of `getOrSet`'s `lock` option: the backend's atomic
 * `acquireLock`/`releaseLock` where it has them, else `add()` and a
 * get-then-delete.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CacheBackend } from '../backend.js'
import { newToken } from './tokens.js'

function lockKey(key: string): string {
  return `_cachette_lock_${key}`
}

/** A lock held: its key and token. */
export interface Held {
  readonly key: string
  readonly token: string
}

/** Takes the lock of `key`; resolves it, or `undefined` when someone else holds it. */
export async function takeLock(
  backend: CacheBackend,
  key: string,
  ttlMs: number,
): Promise<Held | undefined> {
  const k = lockKey(key)
  const token = newToken()
  const taken = backend.acquireLock
    ? await backend.acquireLock(k, token, ttlMs)
    : await backend.add(k, token, ttlMs / 1000)
  return taken ? { key: k, token } : undefined
}

/**
 * Takes the lock of `key`, or waits for its holder's result: polls `recheck`
 * (after 10 ms, doubling to 100 ms) and tries the lock again after each
 * poll, until `waitMs` runs out. Resolves `{ held }` once taken, `{ found }`
 * when `recheck` found a result, `{}` when the wait ran out. A backend
 * error rejects at once: the caller goes on without the lock rather than
 * wait on a store that is down.
 */
export async function lockOrWait<R>(
  backend: CacheBackend,
  key: string,
  ttlMs: number,
  waitMs: number,
  recheck: () => Promise<R | undefined>,
): Promise<{ held?: Held; found?: R }> {
  const deadline = Date.now() + waitMs
  let pause = 10
  for (;;) {
    const held = await takeLock(backend, key, ttlMs)
    if (held !== undefined) return { held }
    if (Date.now() >= deadline) return {}
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())))
    pause = Math.min(pause * 2, 100)
    const found = await recheck()
    if (found !== undefined) return { found }
  }
}

/** Releases a lock, only if it still holds our token. */
export async function releaseLock(backend: CacheBackend, held: Held): Promise<void> {
  if (backend.releaseLock) {
    await backend.releaseLock(held.key, held.token)
    return
  }
  // Not atomic: the lock may expire and be taken between the read and the
  // delete. The window is one round trip, far shorter than a lock's lifetime.
  if ((await backend.get(held.key)) === held.token) await backend.delete(held.key)
}
