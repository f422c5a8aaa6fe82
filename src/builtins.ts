/**
 * Node builtins fetched with process.getBuiltinModule (Node >= 20.16) instead of ES imports.
 * Importing a builtin as an ES module costs the loader a module job and builds a facade that
 * reads every export, the lazy ones too: for node:fs that loads fs/promises and Node's stream
 * modules (~1 MB of peak RSS in a process that imports natmapper and nothing else), for node:util
 * parseArgs and MIMEType. With every builtin an ES import on the PCP path, a process holding one
 * mapping peaked ~0.6 MB higher. Older Node 20 releases fall back as each caller says.
 *
 * The same reason keeps other builtins out of ES imports on the PCP path and in the UPnP probe's
 * module: Buffer is the global, node:dgram comes through net/dgram.ts, node:fs/promises loads
 * with the first cache file.
 *
 * No top-level await here or anywhere in the package's module graph: `require('natmapper')` loads
 * the ES modules synchronously (Node 20.19+, 22.12+) and refuses a graph that awaits.
 */
import { UnsupportedError } from './errors.js'

const available = typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function'

/** node:fs, or undefined before Node 20.16. */
export function nodeFs (): typeof import('node:fs') | undefined {
  return available ? process.getBuiltinModule('node:fs') : undefined
}

/** node:util, or undefined before Node 20.16. */
export function nodeUtil (): typeof import('node:util') | undefined {
  return available ? process.getBuiltinModule('node:util') : undefined
}

/** What src/compat/builtins.ts leaves on globalThis, under this key, for a Node without getBuiltinModule. */
export interface FallbackBuiltins {
  events: Pick<typeof import('node:events'), 'EventEmitter' | 'setMaxListeners'>
  diagnosticsChannel: Pick<typeof import('node:diagnostics_channel'), 'channel'>
}

/**
 * The two builtins needed as the package loads (NAT and Mapping extend EventEmitter). Before Node
 * 20.16 (and 22.3) the package's `import` entry points (src/compat/) import them first and leave
 * them on globalThis; a module of dist/ imported by its path on such a Node finds nothing there.
 */
function fallbackBuiltins (): FallbackBuiltins {
  const fallback = (globalThis as Record<symbol, FallbackBuiltins | undefined>)[Symbol.for('natmapper.builtins')]
  if (fallback === undefined) {
    throw new UnsupportedError(`Node.js ${process.version} has no process.getBuiltinModule: import natmapper by its package name ('natmapper', 'natmapper/libp2p'), or use Node.js 20.16 or later`)
  }
  return fallback
}

const events = available ? process.getBuiltinModule('node:events') : fallbackBuiltins().events
export const EventEmitter = events.EventEmitter
export const setMaxListeners = events.setMaxListeners
export const diagnosticsChannel = available ? process.getBuiltinModule('node:diagnostics_channel') : fallbackBuiltins().diagnosticsChannel
