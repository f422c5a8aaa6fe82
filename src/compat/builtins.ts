/**
 * For a Node.js without process.getBuiltinModule (before 20.16 and 22.3), imported by the `import`
 * entry points of this folder before the package itself: the two builtins the package needs as it
 * loads, left on globalThis for src/builtins.ts. An ES import is the only way to reach them there
 * without a top-level await (which would break `require('natmapper')` on the Nodes that allow it).
 * Those Nodes never load this file (the exports map's "module-sync" entries come first for them);
 * 20.16 to 20.18 and 22.3 to 22.11 load it for nothing, a small cost on old releases.
 */
import { channel } from 'node:diagnostics_channel'
import { EventEmitter, setMaxListeners } from 'node:events'
import type { FallbackBuiltins } from '../builtins.js'

const KEY = Symbol.for('natmapper.builtins')   // the key src/builtins.ts reads
const slots = globalThis as Record<symbol, FallbackBuiltins | undefined>
slots[KEY] ??= { events: { EventEmitter, setMaxListeners }, diagnosticsChannel: { channel } }
