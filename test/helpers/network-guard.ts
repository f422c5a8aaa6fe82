/**
 * Loaded with --import into every test process that runs in the machine's own network namespace.
 * It makes the network rules mechanical: any UDP or TCP traffic toward a non-loopback address
 * (the workplace's gateway, the SSDP multicast group, anything else) throws at the call site
 * instead of leaving the machine. Lab agents run inside namespaces and do not load it.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import { inRootNetworkNamespace } from './netns.js'

export function isLoopback (host: string): boolean {
  const address = host.startsWith('::ffff:') ? host.slice(7) : host
  if (address === 'localhost' || address === '::1') return true
  return net.isIPv4(address) && address.startsWith('127.')
}

function refuse (kind: string, host: unknown): never {
  throw new Error(`network guard: ${kind} to ${String(host)} refused; tests in the root network namespace may only reach loopback addresses`)
}

if (inRootNetworkNamespace()) {
  const dgramSend = dgram.Socket.prototype.send
  dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
    // send(msg, offset, length, port, address?, cb?) or send(msg, port, address?, cb?) or send(msg) when connected.
    const address = typeof args[1] === 'number' && typeof args[2] === 'number' ? args[4] : (typeof args[1] === 'number' ? args[2] : undefined)
    if (typeof address === 'string' && !isLoopback(address)) refuse('UDP datagram', address)
    return (dgramSend as (...a: unknown[]) => void).apply(this, args)
  } as typeof dgramSend

  const dgramConnect = dgram.Socket.prototype.connect
  dgram.Socket.prototype.connect = function (this: dgram.Socket, ...args: unknown[]) {
    const address = typeof args[1] === 'string' ? args[1] : 'localhost'
    if (!isLoopback(address)) refuse('UDP connect', address)
    return (dgramConnect as (...a: unknown[]) => void).apply(this, args)
  } as typeof dgramConnect

  dgram.Socket.prototype.addMembership = function (group: string) {
    refuse('multicast membership', group)
  }

  const netConnect = net.Socket.prototype.connect
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const first = args[0]
    let host: unknown
    if (Array.isArray(first)) host = (first[0] as { host?: unknown } | undefined)?.host ?? 'localhost'
    else if (typeof first === 'object' && first !== null) host = (first as { host?: unknown, path?: unknown }).path !== undefined ? 'localhost' : ((first as { host?: unknown }).host ?? 'localhost')
    else host = typeof args[1] === 'string' ? args[1] : 'localhost'
    if (typeof host !== 'string' || !isLoopback(host)) refuse('TCP connect', host)
    return (netConnect as (...a: unknown[]) => net.Socket).apply(this, args)
  } as typeof netConnect
}
