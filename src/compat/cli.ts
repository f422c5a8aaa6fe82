#!/usr/bin/env node
/**
 * The `natmapper` executable as installed: dist/cli/main.js, after the builtins of ./builtins.ts on
 * a Node.js without process.getBuiltinModule (before 20.16 and 22.3; see src/builtins.ts).
 */
if (typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule !== 'function') await import('./builtins.js')
await import('../cli/main.js')
