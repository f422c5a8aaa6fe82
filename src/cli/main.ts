#!/usr/bin/env node
/**
 * The `natmapper` executable. Everything is in run.ts; this file only turns its result into the
 * process's exit.
 */
import { runCli } from './run.js'

/** After the work is done the process should end by itself; if something still holds it, say so and go. */
const LINGER_LIMIT_MS = 3_000

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
