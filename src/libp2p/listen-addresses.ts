import type { Multiaddr } from '@multiformats/multiaddr'

/** A port this node listens on that a gateway can forward to: one mapping each. */
export interface ListenPort {
  family: 'IPv4' | 'IPv6'
  host: string
  protocol: 'tcp' | 'udp'
  port: number
}

/** What the address manager reports (libp2p's NodeAddress, narrowed to what is read here). */
export interface AddressWithType {
  /** The address. */
  multiaddr: Multiaddr
  /** Where it comes from: 'transport' for a listen address (others are not mapped). */
  type: string
  /** Whether autonat (or `confirmObservedAddr`) confirmed it; absent from older address managers. */
  verified?: boolean
  /** When it is to be verified again (ms); 0 until autonat has said anything about it. */
  expires?: number
}

/**
 * Protocol names that may follow `/tcp/<port>` or `/udp/<port>` on an address a mapping serves:
 * TCP (nothing), WebSockets (`ws`, `wss`, `tls/sni/ws`), QUIC v1 and WebTransport over it (the
 * same set upnp-nat maps). Anything else (WebRTC-direct, circuit relay) is left alone.
 */
const AFTER_TCP = ['', 'ws', 'wss', 'tls/ws', 'tls/sni/ws']
const AFTER_UDP = ['quic-v1', 'quic-v1/webtransport']

/**
 * The listen ports behind the node's own transport addresses (not observed or mapped ones), one
 * per family, host, protocol and port however many multiaddrs share it. Only addresses on
 * `hosts` qualify: a gateway forwards to the one address the host has on the link facing it
 * (IPv4), or opens a pinhole to the one global address it chose (IPv6); loopback, link-local
 * and other interfaces' addresses never match.
 */
export function listenPorts (addresses: readonly AddressWithType[], hosts: ReadonlySet<string>): ListenPort[] {
  const ports = new Map<string, ListenPort>()
  for (const { multiaddr, type } of addresses) {
    if (type !== 'transport') continue
    const parts = multiaddr.getComponents()
    const [ip, transport, ...rest] = parts
    if (ip === undefined || transport === undefined || ip.value === undefined || transport.value === undefined) continue
    if ((ip.name !== 'ip4' && ip.name !== 'ip6') || (transport.name !== 'tcp' && transport.name !== 'udp')) continue
    // A trailing /p2p/<peer id> names the node, not the transport; certhashes are WebTransport's.
    const stack = rest.filter((part) => part.name !== 'p2p' && part.name !== 'certhash').map((part) => part.name).join('/')
    if (!(transport.name === 'tcp' ? AFTER_TCP : AFTER_UDP).includes(stack)) continue
    if (!hosts.has(ip.value)) continue
    const port = Number(transport.value)
    if (!Number.isInteger(port) || port < 1 || port > 65_535) continue
    const entry: ListenPort = { family: ip.name === 'ip4' ? 'IPv4' : 'IPv6', host: ip.value, protocol: transport.name, port }
    ports.set(listenPortKey(entry), entry)
  }
  return [...ports.values()]
}

export function listenPortKey (port: ListenPort): string {
  return `${port.family}/${port.host}/${port.protocol}/${port.port}`
}
