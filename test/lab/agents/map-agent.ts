// Runs on the LAN host: serves an echo port, maps it with natmapper, reports every event as one
// JSON line on stdout, and obeys commands on stdin. It never calls process.exit: after "exit" it
// closes what it opened, and the test checks that the process then ends by itself.
import { createInterface } from 'node:readline'
import { discoverNAT, type DiscoverOptions, type Mapping, type MappingOptions, type NAT } from '../../../src/index.js'
import { agentConfig, describeError, report } from './agent-io.js'
import { startEcho } from './echo.js'

interface AgentConfig {
  transport: 'tcp' | 'udp'
  port: number
  discover: DiscoverOptions
  mapping?: MappingOptions
  /** More internal ports to serve and map on the same NAT ('mapped-more' reports them). */
  morePorts?: number[]
}

const config = agentConfig<AgentConfig>()

const echo = await startEcho(config.transport, config.port, config.discover.family === 'IPv6' ? '::' : '0.0.0.0')
const moreEchoes = await Promise.all((config.morePorts ?? []).map(async (port) => await startEcho(config.transport, port)))
let nat: NAT
try {
  const started = performance.now()
  nat = await discoverNAT(config.discover)
  report('discovered', { type: nat.type, gateway: nat.gateway, localAddress: nat.localAddress, ms: performance.now() - started })
} catch (error) {
  report('discovery-failed', { error: describeError(error) })
  await echo.close()
  for (const each of moreEchoes) await each.close()
  process.exitCode = 1
  throw error
}
for (const kind of ['established', 'renewed', 'changed', 'failed', 'lost'] as const) {
  nat.on(`mapping-${kind}`, (event: { mapping: Mapping, error?: unknown }) => {
    report(kind, { port: event.mapping.externalPort, ...('error' in event && event.error !== undefined ? { error: describeError(event.error) } : {}) })
  })
}
nat.on('external-address-changed', (event) => { report('external-address-changed', { ...event }) })
nat.on('gateway-reset', (event) => { report('gateway-reset', { ...event }) })
nat.on('gateway-changed', (event) => { report('gateway-changed', { ...event }) })

const mapping = await nat.newMapping(config.transport, config.port, config.mapping)
try {
  report('mapped', { ...(await mapping.externalAddr()) })
} catch (error) {
  report('not-mapped', { error: describeError(error), lastError: describeError(mapping.lastError) })
}

if (config.morePorts !== undefined) {
  const more = await Promise.all(config.morePorts.map(async (port) => await nat.newMapping(config.transport, port, config.mapping)))
  report('mapped-more', { mappings: more.map((each) => ({ internalPort: each.internalPort, port: each.externalPort, established: each.established })) })
}

const commands = createInterface({ input: process.stdin })
for await (const command of commands) {
  try {
    if (command === 'address') {
      report('address', { ...(await mapping.externalAddr()) })
    } else if (command === 'status') {
      report('status', { established: mapping.established, port: mapping.externalPort, type: nat.type, gateway: nat.gateway,
        externalAddressIsPublic: nat.externalAddressIsPublic, externalAddressScope: nat.externalAddressScope, lastError: describeError(mapping.lastError) })
    } else if (command === 'recreate') {
      await mapping.recreate()
      report('recreated', { ...(await mapping.externalAddr()) })
    } else if (command === 'close-mapping') {
      await mapping.close()
      report('mapping-closed', { established: mapping.established })
    } else if (command === 'exit') {
      await nat.close()
      await echo.close()
      for (const each of moreEchoes) await each.close()
      report('closed')
      break
    }
  } catch (error) {
    report('command-failed', { command, error: describeError(error) })
  }
}
commands.close()
