/**
 * Small promise helpers shared across cachette: telling a thenable from a
 * plain value, and bounded parallelism.
 */

/** Whether `value` is a promise or any other thenable (so a caller can skip an `await` for plain values). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

/**
 * What {@link mapLimit} does when a call rejects:
 * - `'reject'`: its promise rejects with the first failure (calls already
 *   started, and the items the other workers pick up, still run to their
 *   end; nothing waits for them), and resolves the values in item order when
 *   every call succeeded;
 * - `'settle'`: every call runs, and it resolves each call's outcome
 *   (`PromiseSettledResult`) in item order; it never rejects.
 */
export type MapLimitErrors = 'reject' | 'settle'

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, starting them
 * in item order. `errors` says what a failed call does (see
 * {@link MapLimitErrors}).
 *
 * @example
 * const sizes = await mapLimit(paths, 8, 'reject', async (path) => (await stat(path)).size)
 * const outcomes = await mapLimit(names, 8, 'settle', (name) => store.delete(name))
 */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  errors: 'reject',
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]>
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  errors: 'settle',
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]>
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  errors: MapLimitErrors,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[] | PromiseSettledResult<R>[]> {
  const settle = errors === 'settle'
  const out = new Array<R | PromiseSettledResult<R>>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      if (!settle) {
        out[i] = await fn(items[i] as T, i)
        continue
      }
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i] as T, i) }
      } catch (reason) {
        out[i] = { status: 'rejected', reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out as R[] | PromiseSettledResult<R>[]
}
