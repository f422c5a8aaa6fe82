import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))

/**
 * What each lower layer may import (paths relative to src/, node: builtins always allowed).
 * net/ (sockets, bytes, routes, clocks) knows no protocol and no core; core/ knows no wire format.
 */
const LAYERS: Record<string, { allowed: RegExp, says: string }> = {
  net: {
    allowed: /^(net\/|errors\.ts$|constants\.ts$|builtins\.ts$|debug\.ts$)/,
    says: 'net/ imports only net/, errors, constants, builtins and debug'
  },
  core: {
    allowed: /^(core\/|net\/|errors\.ts$|constants\.ts$|builtins\.ts$|debug\.ts$|options\.ts$|load-once\.ts$)/,
    says: 'core/ imports no protocol (pcp/, natpmp/, upnp/), no CLI and no libp2p service'
  }
}

/** Every module specifier a file names: static imports and re-exports (type-only too) and import(). */
function specifiers (source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  return [
    ...[...code.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm)].map((match) => match[1] ?? ''),
    ...[...code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)].map((match) => match[1] ?? ''),
    ...[...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((match) => match[1] ?? '')
  ]
}

/** The imports of `file` (relative to src/) that its layer does not allow, as "file → target". */
function upwardImports (file: string, source: string): string[] {
  const layer = LAYERS[file.split('/')[0] ?? '']
  if (layer === undefined) return []
  return specifiers(source).flatMap((specifier) => {
    if (specifier.startsWith('node:')) return []
    if (!specifier.startsWith('.')) return [`${file} → ${specifier}`]
    const target = new URL(specifier, `file:///src/${file}`).pathname.replace(/^\/src\//, '').replace(/\.js$/, '.ts')
    return layer.allowed.test(target) ? [] : [`${file} → ${target}`]
  })
}

describe('layers point down', () => {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && (file.startsWith('net/') || file.startsWith('core/')))

  it('net/ knows no protocol and no core; core/ knows no protocol', () => {
    assert.ok(files.filter((file) => file.startsWith('net/')).length >= 10, String(files.length))
    assert.ok(files.filter((file) => file.startsWith('core/')).length >= 8, String(files.length))
    const offending = files.flatMap((file) => upwardImports(file, readFileSync(`${SRC}${file}`, 'utf8')))
    assert.deepEqual(offending, [], `${LAYERS.net?.says}; ${LAYERS.core?.says}`)
  })

  it('sees every form of an upward import (the check itself)', () => {
    const source = [
      "import { decodeResponse } from '../pcp/codec.js'",
      "import type { RequestOptions } from '../core/gateway-client.js'",
      "export { SSDP_PORT } from '../upnp/constants.js'",
      'import {',
      '  abortedBy',
      "} from '../core/deadline.js'",
      "const { natPmpProbe } = await import('../natpmp/client.js')",
      "import '../upnp/xml.js'",
      "import { loadDgram } from './dgram.js'",
      "import { execFile } from 'node:child_process'",
      "// import { x } from '../core/nat.js' (a comment is no import)"
    ].join('\n')
    assert.deepEqual(upwardImports('net/x.ts', source), [
      'net/x.ts → pcp/codec.ts',
      'net/x.ts → core/gateway-client.ts',
      'net/x.ts → upnp/constants.ts',
      'net/x.ts → core/deadline.ts',
      'net/x.ts → upnp/xml.ts',
      'net/x.ts → natpmp/client.ts'
    ])
    assert.deepEqual(upwardImports('core/x.ts', source), [
      'core/x.ts → pcp/codec.ts',
      'core/x.ts → upnp/constants.ts',
      'core/x.ts → upnp/xml.ts',
      'core/x.ts → natpmp/client.ts'
    ])
    assert.deepEqual(upwardImports('upnp/x.ts', source), [])
  })
})
