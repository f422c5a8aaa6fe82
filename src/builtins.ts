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
 */
const available = typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function'

/** node:fs, or undefined before Node 20.16. */
export function nodeFs (): typeof import('node:fs') | undefined {
  return available ? process.getBuiltinModule('node:fs') : undefined
}

/** node:util, or undefined before Node 20.16. */
export function nodeUtil (): typeof import('node:util') | undefined {
  return available ? process.getBuiltinModule('node:util') : undefined
}

// Needed as the package loads (NAT and Mapping extend EventEmitter): before Node 20.16, imported.
const events = available ? process.getBuiltinModule('node:events') : (await import('node:events')).default
export const EventEmitter = events.EventEmitter
export const setMaxListeners = events.setMaxListeners
export const diagnosticsChannel = available ? process.getBuiltinModule('node:diagnostics_channel') : (await import('node:diagnostics_channel')).default
