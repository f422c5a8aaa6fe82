// A real js-libp2p node (TCP, noise, yamux, identify, ping) inside a lab namespace; reports as
// JSON lines on stdout and obeys commands on stdin, like map-agent.ts.
//   role "listen": node A, with a NAT service ("natmapper": natmapper/libp2p, or "upnp-nat":
//     @libp2p/upnp-nat for the benchmark); reports "multiaddrs" whenever getMultiaddrs() changes
//     (with the ms since createLibp2p() was called); "exit" stops the node and reports "stopped".
//   role "dial": node B, listening nowhere; "ping <multiaddr>" dials exactly that multiaddr and
//     pings, reporting "pinged" or "command-failed"; "exit" stops it.
//   "nats" reports the natmapper service's NATs (type, gateway).
// Needs Node.js 22 or later (js-libp2p 3).
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { natMapper, type NatMapperInit } from '../../../src/libp2p/index.js'
import { agentConfig, describeError, report } from './agent-io.js'

interface AgentConfig {
  role: 'listen' | 'dial'
  listen?: string[]
  nat?: 'natmapper' | 'upnp-nat'
  natmapper?: NatMapperInit
}

const config = agentConfig<AgentConfig>()

const natService = config.role !== 'listen'
  ? {}
  : config.nat === 'upnp-nat'
    ? { nat: uPnPNAT({ autoConfirmAddress: true }) }
    : { nat: natMapper({ autoConfirmAddress: true, ...config.natmapper }) }

const created = performance.now()
const node = await createLibp2p({
  addresses: { listen: config.listen ?? [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping(), ...natService }
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
