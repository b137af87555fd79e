#!/usr/bin/env node
/**
 * The `cachette` executable (package.json `bin`, built to dist/cli.js): runs
 * {@link main} on the process's arguments and streams and exits with its code.
 */
import { main } from './main.js'

// `cachette keys | head`: the reader went away, which is not an error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw error
})

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    // Output is flushed by now; a connection a backend failed to close must
    // not keep the command alive.
    setTimeout(() => process.exit(code), 500).unref()
  },
  (error: unknown) => {
    // main() reports its own errors; this is a bug in the CLI itself.
    process.stderr.write(`cachette: internal error: ${String(error)}\n`)
    process.exit(3)
  },
)
