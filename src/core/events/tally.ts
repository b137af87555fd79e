/**
 * The counters observability keeps per slot: outcome tallies of the engines
 * and what each backend class did while observed.
 * @internal
 */
import { BACKEND_OPERATIONS, type BackendOperation } from '../backend.js'
import type { BackendTotals, OperationStatus, Outcome } from './types.js'

/** Outcome counts as stored: indexed by the outcome itself, so counting is one increment. */
export type OutcomeTally = Record<Outcome, number>

/** Per-status call counts of one operation. */
export type StatusTally = Record<OperationStatus, number>

/** What one backend class did on one slot while observed. */
export interface BackendTally extends BackendTotals {
  readonly backend: string
  readonly ops: Record<BackendOperation, StatusTally>
}

/** Where the instrumenting wrapper of a backend class counts (a `SlotObserver`). */
export interface TallySource {
  tallyFor(backend: string): BackendTally
}

/** A zeroed tally of `backend`, with a row for each of {@link BACKEND_OPERATIONS}. */
export function newBackendTally(backend: string): BackendTally {
  const ops = {} as Record<BackendOperation, StatusTally>
  for (const op of BACKEND_OPERATIONS) ops[op] = { hit: 0, miss: 0, ok: 0, error: 0 }
  return { backend, ops, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 }
}
