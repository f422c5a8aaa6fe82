/**
 * Node builtins fetched with process.getBuiltinModule (Node >= 20.16) instead of an ES import.
 * Importing a builtin as an ES module builds its facade, which reads every export, the lazy ones
 * too: for node:fs that loads fs/promises and Node's stream modules (~1 MB of peak RSS in a
 * process that imports natmapper and nothing else), for node:util parseArgs and MIMEType.
 * Undefined on older Node 20 releases, where each caller has a fallback.
 *
 * The same reason keeps other builtins out of ES imports on the PCP path and in the UPnP probe's
 * module: Buffer is the global, node:dgram comes through net/dgram.ts, node:fs/promises loads
 * with the first cache file.
 */
const available = typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function'

export function nodeFs (): typeof import('node:fs') | undefined {
  return available ? process.getBuiltinModule('node:fs') : undefined
}

export function nodeUtil (): typeof import('node:util') | undefined {
  return available ? process.getBuiltinModule('node:util') : undefined
}
