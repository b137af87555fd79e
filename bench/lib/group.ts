import type { GroupResult } from './report.js'

/** What run.ts hands each group. */
export interface GroupContext {
  /** Smoke run: tiny slices, few rounds, small data sets. */
  readonly quick: boolean
  /** Progress output (stderr). */
  readonly log: (line: string) => void
}

export interface Group {
  readonly name: string
  run(ctx: GroupContext): Promise<GroupResult>
}
