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

/**
 * Runs a group's closers in reverse order of creation (the server, pushed
 * first, stops last), each awaited; a closer that throws is logged as
 * `<group>: closing failed: …` and the others still run.
 */
export async function closeAll(
  closers: readonly (() => unknown)[],
  group: string,
  log: (line: string) => void,
): Promise<void> {
  for (const close of [...closers].reverse()) {
    try {
      await close()
    } catch (error) {
      log(`${group}: closing failed: ${(error as Error).message}`)
    }
  }
}
