// Placeholder signatures; the view-caching engine replaces this file.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Slot, SlotSettings } from '../../core/slot.js'

export interface CachedOptions {
  timeout?: number | string
}
export type CachedMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
export type DeleteCachedTarget = string | { path: string }
export interface CacheLike {
  get(key: string): Promise<unknown>
}
export function createCachedMiddleware(_cache: CacheLike, _slot: () => Slot, _options: CachedOptions): CachedMiddleware {
  return (_req, _res, next) => next()
}
export function viewKeyFor(target: DeleteCachedTarget, _settings: SlotSettings): string {
  return `view/${typeof target === 'string' ? target : target.path}`
}
