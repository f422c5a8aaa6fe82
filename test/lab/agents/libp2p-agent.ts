// A real js-libp2p node (TCP, noise, yamux, identify, ping) inside a lab namespace; reports as
// JSON lines on stdout and obeys commands on stdin, like map-agent.ts.
//   role "listen": node A, with a NAT service ("natmapper": natmapper/libp2p, or "upnp-nat":
//     @libp2p/upnp-nat for the benchmark); reports "multiaddrs" whenever getMultiaddrs() changes
//     (with the ms since createLibp2p() was called); "exit" stops the node and reports "stopped".
//   role "dial": node B, listening nowhere; "ping <multiaddr>" dials exactly that multiaddr and
//     pings, reporting "pinged" or "command-failed"; "exit" stops it.
//   "nats" reports the natmapper service's NATs (type, gateway).
//   With "autonat": "stand-in", natmapper runs without autoConfirmAddress beside a stand-in for
//     @libp2p/autonat (not installed) that gives its verdicts the way autonat does, through the
//     address manager: "autonat-reachable <multiaddr>" calls confirmObservedAddr(),
//     "autonat-unreachable <multiaddr>" removeObservedAddr(). The natmapper service's log lines
//     are then reported as "log" events.
// Needs Node.js 22 or later (js-libp2p 3).
import { format } from 'node:util'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { serviceCapabilities, type ComponentLogger, type Logger } from '@libp2p/interface'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { natMapper, type NatMapperInit } from '../../../src/libp2p/index.js'
import { agentConfig, describeError, report } from './agent-io.js'

interface AgentConfig {
  role: 'listen' | 'dial'
  listen?: string[]
  nat?: 'natmapper' | 'upnp-nat'
  natmapper?: NatMapperInit
  autonat?: 'stand-in'
}

/** What autonat itself uses of the address manager to give its verdict. */
interface VerdictTarget {
  confirmObservedAddr: (addr: Multiaddr) => void
  removeObservedAddr: (addr: Multiaddr) => void
}

/** Stands in for @libp2p/autonat: same capability, same calls to the address manager, verdicts on command. */
class AutonatStandIn {
  readonly [serviceCapabilities] = ['@libp2p/autonat']
  readonly #addressManager: VerdictTarget
  constructor (components: { addressManager: VerdictTarget }) { this.#addressManager = components.addressManager }
  reachable (addr: Multiaddr): void { this.#addressManager.confirmObservedAddr(addr) }
  unreachable (addr: Multiaddr): void { this.#addressManager.removeObservedAddr(addr) }
}

/** libp2p's logger, but the natmapper service's lines are reported as "log" events. */
function reportingLogger (): ComponentLogger {
  const make = (name: string): Logger => {
    const log = (level: string) => (formatter: string, ...args: unknown[]): void => {
      if (name.startsWith('libp2p:natmapper')) report('log', { level, line: format(formatter.replace(/%[aep]/g, '%s'), ...args) })
    }
    return Object.assign(log('log'), { error: log('error'), trace: log('trace'), enabled: true, newScope: (scope: string) => make(`${name}:${scope}`) }) as unknown as Logger
  }
  return { forComponent: make }
}

const config = agentConfig<AgentConfig>()

const natService = config.role !== 'listen'
  ? {}
  : config.nat === 'upnp-nat'
    ? { nat: uPnPNAT({ autoConfirmAddress: true }) }
    : { nat: natMapper({ autoConfirmAddress: config.autonat === undefined, ...config.natmapper }) }
const autonatService = config.autonat === 'stand-in' ? { autonat: (components: { addressManager: VerdictTarget }) => new AutonatStandIn(components) } : {}

const created = performance.now()
const node = await createLibp2p({
  addresses: { listen: config.listen ?? [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  ...(config.autonat === undefined ? {} : { logger: reportingLogger() }),
  services: { identify: identify(), ping: ping(), ...natService, ...autonatService }
})
report('started', { peerId: node.peerId.toString(), ms: performance.now() - created })

// getMultiaddrs() reads the address manager directly (self:peer:update is debounced by a second).
let reported = ''
const watch = setInterval(() => {
  const addrs = node.getMultiaddrs().map((ma) => ma.toString())
  if (addrs.join(' ') === reported) return
  reported = addrs.join(' ')
  report('multiaddrs', { addrs, ms: performance.now() - created })
}, 5)

const commands = createInterface({ input: process.stdin })
for await (const command of commands) {
  try {
    if (command.startsWith('ping ')) {
      const target = multiaddr(command.slice('ping '.length))
      const rtt = await node.services.ping.ping(target, { signal: AbortSignal.timeout(10_000) })
      report('pinged', { target: target.toString(), rtt })
      // The next ping dials afresh: a kept connection would prove nothing about the mapping.
      await node.hangUp(target)
    } else if (command.startsWith('autonat-reachable ') || command.startsWith('autonat-unreachable ')) {
      const [verdict = '', addr = ''] = command.split(' ')
      const autonat = (node.services as { autonat?: AutonatStandIn }).autonat
      if (autonat === undefined) throw new Error('no autonat stand-in (config.autonat)')
      if (verdict === 'autonat-reachable') autonat.reachable(multiaddr(addr))
      else autonat.unreachable(multiaddr(addr))
      report('autonat-verdict', { verdict, addr })
    } else if (command === 'nats') {
      const service = (node.services as { nat?: { nats?: Array<{ type: string, gateway: string, localAddress: string }> } }).nat
      report('nats', { nats: (service?.nats ?? []).map(({ type, gateway, localAddress }) => ({ type, gateway, localAddress })) })
    } else if (command === 'exit') {
      clearInterval(watch)
      await node.stop()
      report('stopped')
      break
    }
  } catch (error) {
    report('command-failed', { command, error: describeError(error) })
  }
}
commands.close()
