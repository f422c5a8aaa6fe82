/**
 * `NODE_DEBUG=natmapper` logging (util.debuglog). node:util comes through
 * process.getBuiltinModule, not an ES import: importing a builtin as an ES module builds its
 * facade, which evaluates every lazy export (for node:util, parseArgs and MIMEType with their
 * modules), ~0.3 MB of a small process's peak RSS for a logger that is usually off.
 */
import type { DebugLogger } from 'node:util'

let logger: DebugLogger | undefined

/** Logs under the `natmapper` section when NODE_DEBUG names it; otherwise does nothing. */
export function debug (format: string, ...args: unknown[]): void {
  logger ??= loadLogger()
  logger(format, ...args)
}

function loadLogger (): DebugLogger {
  // process.getBuiltinModule is Node >= 20.16. Before it, nothing is logged unless NODE_DEBUG is
  // set, and then from the moment node:util has loaded.
  const util = (process as { getBuiltinModule?: NodeJS.Process['getBuiltinModule'] }).getBuiltinModule?.('node:util')
  if (util !== undefined) return util.debuglog('natmapper')
  const silent = Object.assign(() => {}, { enabled: false }) as DebugLogger
  if (process.env.NODE_DEBUG !== undefined) {
    import('node:util').then((loaded) => { logger = loaded.debuglog('natmapper') }, () => {})
  }
  return silent
}
