// Runs on the LAN host for `npm run soak`: one NAT holding many mappings (each with its own echo
// server), driven by JSON commands on stdin, reporting JSON lines on stdout. It reports anything
// that must never happen (an unhandled rejection, an uncaught exception, a process warning such
// as MaxListenersExceededWarning) instead of dying, so the soak can count it. After "exit" it
// closes everything and never calls process.exit: the soak checks that it then ends by itself.
import { createHook } from 'node:async_hooks'
import { readdirSync } from 'node:fs'
import { getHeapCodeStatistics, writeHeapSnapshot } from 'node:v8'
import { createInterface } from 'node:readline'
import { discoverNAT, type DiscoverOptions, type Mapping, type NAT } from '../../../src/index.js'
import { assertInLabNamespace } from '../../helpers/netns.js'
import { startEcho, type EchoServer } from './echo.js'

interface AgentConfig {
  discover: DiscoverOptions
  mappings: Array<{ transport: 'tcp' | 'udp', port: number }>
  /** A directory: every fifth memory sample also writes a heap snapshot there (`npm run soak -- --heap-snapshots DIR`). */
  heapSnapshots?: string
}

type Command =
  | { cmd: 'open' | 'close', transport: 'tcp' | 'udp', port: number }
  | { cmd: 'status' | 'memory' | 'stats' | 'exit' }

assertInLabNamespace()
const config = JSON.parse(process.argv[2] ?? '{}') as AgentConfig
const report = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n')
}
const describeError = (error: unknown): Record<string, unknown> =>
  error instanceof Error ? { name: error.name, code: (error as { code?: string }).code, message: error.message } : { message: String(error) }

process.on('unhandledRejection', (reason) => { report('crash', { kind: 'unhandledRejection', error: describeError(reason), stack: (reason as Error | undefined)?.stack }) })
process.on('uncaughtException', (error) => { report('crash', { kind: 'uncaughtException', error: describeError(error), stack: error.stack }) })
process.on('warning', (warning) => { report('warning', { name: warning.name, message: warning.message }) })

// natmapper unrefs its sockets and timers, so process.getActiveResourcesInfo() does not see them:
// count what is alive ourselves. Timers, sockets and other resources by type (created minus
// destroyed), and open file descriptors, which every socket holds.
const live: Record<string, number> = {}
const liveTypes = new Map<number, string>()
createHook({
  init (id, type) {
    if (type === 'PROMISE' || type === 'TickObject' || type === 'Microtask') return
    liveTypes.set(id, type)
    live[type] = (live[type] ?? 0) + 1
  },
  destroy (id) {
    const type = liveTypes.get(id)
    if (type === undefined) return
    liveTypes.delete(id)
    live[type] = (live[type] ?? 1) - 1
  }
}).enable()

const LONG_LIVED = ['Timeout', 'UDPWRAP', 'TCPSERVERWRAP']

const held = new Map<string, { mapping: Mapping, echo: EchoServer }>()
const key = (transport: string, port: number): string => `${transport}/${port}`

const nat: NAT = await discoverNAT(config.discover)
report('discovered', { type: nat.type, gateway: nat.gateway, localAddress: nat.localAddress })
for (const kind of ['lost', 'changed'] as const) {
  nat.on(`mapping-${kind}`, (event: { mapping: Mapping, error?: unknown }) => {
    report(kind, { transport: event.mapping.protocol, port: event.mapping.internalPort, externalPort: event.mapping.externalPort, ...(event.error === undefined ? {} : { error: describeError(event.error) }) })
  })
}
// Every event the NAT emitted, counted here, for the soak to hold nat.stats() against.
const emitted: Record<string, number> = {}
const EVENTS = ['mapping-established', 'mapping-renewed', 'mapping-changed', 'mapping-failed', 'mapping-lost', 'gateway-reset', 'gateway-changed'] as const
for (const name of EVENTS) {
  nat.on(name, (event: { recovered?: boolean }) => {
    const kind = name === 'mapping-established' && event.recovered === true ? 'mapping-recovered' : name
    emitted[kind] = (emitted[kind] ?? 0) + 1
  })
}
nat.on('gateway-reset', (event) => { report('gateway-reset', { ...event }) })
nat.on('gateway-changed', (event) => { report('gateway-changed', { ...event }) })
nat.on('external-address-changed', (event) => { report('external-address-changed', { ...event }) })

async function open (transport: 'tcp' | 'udp', port: number): Promise<void> {
  if (held.has(key(transport, port))) return
  const echo = await startEcho(transport, port)
  try {
    held.set(key(transport, port), { mapping: await nat.newMapping(transport, port, { description: 'natmapper soak' }), echo })
  } catch (error) {
    await echo.close()
    throw error
  }
}

async function close (transport: 'tcp' | 'udp', port: number): Promise<void> {
  const entry = held.get(key(transport, port))
  if (entry === undefined) return
  held.delete(key(transport, port))
  // close() rejects when the gateway cannot be told (it is silent); the service goes all the same.
  try {
    await entry.mapping.close()
  } finally {
    await entry.echo.close()
  }
}

/** Every held mapping as it reports itself now: established, and where it says it is reachable. */
async function status (): Promise<Record<string, unknown>> {
  const mappings = await Promise.all([...held.values()].map(async ({ mapping }) => {
    const row: Record<string, unknown> = { transport: mapping.protocol, port: mapping.internalPort, established: mapping.established, externalPort: mapping.externalPort }
    if (mapping.established) {
      try {
        const address = await mapping.externalAddr({ timeout: 3_000 })
        row.address = address.address
        row.externalPort = address.port
      } catch (error) {
        row.addressError = describeError(error)
      }
    }
    return row
  }))
  return { type: nat.type, gateway: nat.gateway, localAddress: nat.localAddress, mappings }
}

let samplesTaken = 0
function memory (): Record<string, unknown> {
  // Measured after a full collection, so that the figure is what is still referenced.
  const collect = (globalThis as { gc?: () => void }).gc
  collect?.()
  const byKind = Object.fromEntries(Object.entries(live).filter(([, count]) => count > 0))
  const usage = process.memoryUsage()
  // heapUsed counts V8's compiled code and bytecode too, which grow as more paths run and get optimised.
  const code = getHeapCodeStatistics()
  samplesTaken++
  if (config.heapSnapshots !== undefined && samplesTaken % 5 === 1) {
    writeHeapSnapshot(`${config.heapSnapshots}/${config.discover.protocols?.join('+') ?? 'all'}-${String(samplesTaken).padStart(3, '0')}.heapsnapshot`)
  }
  return {
    gc: collect !== undefined,
    heapUsed: usage.heapUsed,
    heapCode: code.code_and_metadata_size + code.bytecode_and_metadata_size,
    rss: usage.rss,
    fds: readdirSync('/proc/self/fd').length,
    timers: live.Timeout ?? 0,
    // What lives as long as a mapping or a NAT; file reads and HTTP connections come and go.
    handles: LONG_LIVED.reduce((sum, type) => sum + (live[type] ?? 0), 0),
    byKind,
    mappings: held.size,
    natMappings: nat.mappings().length
  }
}

await Promise.all(config.mappings.map(async ({ transport, port }) => { await open(transport, port) }))
report('ready', await status())

const commands = createInterface({ input: process.stdin })
for await (const line of commands) {
  let command: Command
  try { command = JSON.parse(line) as Command } catch { continue }
  try {
    if (command.cmd === 'open') {
      await open(command.transport, command.port)
      report('opened', { transport: command.transport, port: command.port })
    } else if (command.cmd === 'close') {
      await close(command.transport, command.port)
      report('mapping-closed', { transport: command.transport, port: command.port })
    } else if (command.cmd === 'status') {
      report('status', await status())
    } else if (command.cmd === 'stats') {
      report('stats', { stats: nat.stats(), emitted })
    } else if (command.cmd === 'memory') {
      report('memory', memory())
    } else if (command.cmd === 'exit') {
      await nat.close()
      await Promise.all([...held.values()].map(async ({ echo }) => { await echo.close() }))
      held.clear()
      report('closed')
      break
    }
  } catch (error) {
    report('command-failed', { command, error: describeError(error) })
  }
}
commands.close()
