/**
 * `NODE_DEBUG=natmapper` logging (util.debuglog), with node:util fetched without an ES import
 * (see builtins.ts): a logger that is usually off should not load anything.
 */
import type { DebugLogger } from 'node:util'
import { nodeUtil } from './builtins.js'

let logger: DebugLogger | undefined

/** Logs under the `natmapper` section when NODE_DEBUG names it; otherwise does nothing. */
export function debug (format: string, ...args: unknown[]): void {
  logger ??= loadLogger()
  logger(format, ...args)
}

function loadLogger (): DebugLogger {
  const util = nodeUtil()
  if (util !== undefined) return util.debuglog('natmapper')
  // Node < 20.16: when NODE_DEBUG is set, log from the moment node:util has loaded.
  const silent = Object.assign(() => {}, { enabled: false }) as DebugLogger
  if (process.env.NODE_DEBUG !== undefined) {
    import('node:util').then((loaded) => { logger = loaded.debuglog('natmapper') }, () => {})
  }
  return silent
}
