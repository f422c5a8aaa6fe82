import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Runs `body` (an ES module's code) in a fresh process with tsx, after `setup` has run first
 * (before any natmapper module loads), and returns what it printed.
 */
async function runFresh (setup: string, body: string): Promise<string> {
  // Counts Web Crypto calls: randomness should come from /dev/urandom where node:fs is at hand.
  const countCalls = 'let webCryptoCalls = 0; const getRandomValues = crypto.getRandomValues.bind(crypto); crypto.getRandomValues = (array) => { webCryptoCalls++; return getRandomValues(array) }'
  const code = `${countCalls}\n${setup}\n${body}`
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

const exercise = `
  const { EventEmitter, setMaxListeners, diagnosticsChannel, nodeFs, nodeUtil } = await import('./src/builtins.ts')
  const { randomBytes } = await import('./src/net/random.ts')
  const { readProcFile } = await import('./src/net/default-gateway.ts')
  const { debug } = await import('./src/debug.ts')
  const emitter = new EventEmitter()
  let heard = 0
  emitter.on('x', () => { heard++ })
  emitter.emit('x')
  const signal = new AbortController().signal
  setMaxListeners(0, signal)
  const channel = diagnosticsChannel.channel('natmapper:test')
  debug('fresh process %d', 1)
  const route = await readProcFile('/proc/self/stat')
  console.log(JSON.stringify({
    heard,
    channel: typeof channel.publish,
    fs: nodeFs() !== undefined,
    util: nodeUtil() !== undefined,
    nonce: randomBytes(12).length,
    route: route.length > 0,
    webCrypto: webCryptoCalls > 0
  }))`

describe('builtins without ES imports', () => {
  it('hands out node:events, node:diagnostics_channel, node:fs and node:util, and reads randomness without Web Crypto', async () => {
    const result = JSON.parse(await runFresh('', exercise)) as Record<string, unknown>
    assert.deepEqual(result, { heard: 1, channel: 'function', fs: true, util: true, nonce: 12, route: true, webCrypto: false })
  })

  it('falls back on a Node without process.getBuiltinModule (before 20.16), after the package\'s import entry loaded the builtins', async () => {
    const result = JSON.parse(await runFresh("delete process.getBuiltinModule; await import('./src/compat/builtins.ts')", exercise)) as Record<string, unknown>
    assert.deepEqual(result, { heard: 1, channel: 'function', fs: false, util: false, nonce: 12, route: true, webCrypto: true })
  })

  it('says what to do on a Node without process.getBuiltinModule when a module is imported by its path', async () => {
    const code = "try { await import('./src/builtins.ts'); console.log('loaded') } catch (error) { console.log(error.code, error.message) }"
    const printed = await runFresh('delete process.getBuiltinModule', code)
    assert.match(printed, /^ERR_UNSUPPORTED Node\.js v[\d.]+ has no process\.getBuiltinModule: import natmapper by its package name/)
  })
})

// compat/ is what Nodes before 20.19 and 22.12 load instead (the exports map's "import" entries).
describe('the library path (src/ but the CLI, the libp2p service and compat/)', () => {
  const files = readdirSync(`${ROOT}src`, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.startsWith('cli/') && !file.startsWith('libp2p/') && !file.startsWith('compat/'))

  it('imports no builtin as an ES module (see src/builtins.ts)', () => {
    assert.ok(files.length > 30, String(files.length))
    const offending = files.flatMap((file) => [...readFileSync(`${ROOT}src/${file}`, 'utf8').matchAll(/^import (?!type )[^;\n]*from 'node:[^']+'/gm)].map((match) => `${file}: ${match[0]}`))
    // The XML parser (saxes, CommonJS) loads with the UPnP gateway code, once a UPnP gateway answered.
    assert.deepEqual(offending, ["upnp/xml.ts: import { createRequire } from 'node:module'"])
  })

  it('reads time from net/clock.ts, not the performance global (which loads perf_hooks)', () => {
    const offending = files.filter((file) => /\bperformance\.now\(/.test(readFileSync(`${ROOT}src/${file}`, 'utf8').replace(/^\s*(\/\*\*|\*).*$/gm, '')))
    assert.deepEqual(offending, [])
  })
})
