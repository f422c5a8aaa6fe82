#!/usr/bin/env node
/**
 * The `natmapper` executable. Everything is in run.ts; this file only turns its result into the
 * process's exit.
 */
import { runCli } from './run.js'

/** After the work is done the process should end by itself; if something still holds it, say so and go. */
const LINGER_LIMIT_MS = 3_000

// A reader that went away (`natmapper ... | head -1`) is not an error worth a stack trace; `map`
// also treats it as a signal to delete its mapping and stop (run.ts).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => { if (error.code !== 'EPIPE') throw error })
}

try {
  const result = await runCli(process.argv.slice(2))
  if (result.exitNow === true) process.exit(result.code)
  process.exitCode = result.code
  setTimeout(() => {
    process.stderr.write('natmapper: warning: something was still running after the command finished; exiting\n')
    process.exit(result.code)
  }, LINGER_LIMIT_MS).unref()
} catch (error) {
  // A bug, not a user or network error (those are printed by runCli): show everything.
  process.stderr.write(`natmapper: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
}
