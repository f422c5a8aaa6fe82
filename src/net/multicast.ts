import type dgram from 'node:dgram'
import { loadDgram } from './dgram.js'
import { sameAddress } from './ip-address.js'
import { debug } from '../debug.js'

/** A multicast group on our link and the port it is sent to. */
export interface MulticastGroup {
  group: string
  port: number
}

export interface MulticastListener {
  close: () => void
}

export interface GatewayMulticastOptions extends MulticastGroup {
  /** Only datagrams from this address are handed on: anyone on the LAN can multicast. */
  gateway: string
  /** Our address on the gateway's link: the group is joined there. */
  localAddress: string
  onMessage: (bytes: Uint8Array) => void
}

/**
 * Joins a multicast group on our link and hands on what the gateway sends to it. Several
 * processes on a host may listen at once (SO_REUSEADDR). Never throws and never keeps the
 * process alive; a port or group that cannot be joined only means nothing arrives.
 */
export function listenToGatewayMulticast ({ port, group, gateway, localAddress, onMessage }: GatewayMulticastOptions): MulticastListener {
  let socket: dgram.Socket | undefined
  let closed = false
  // After this turn of the event loop: the news waits, the request that made us listen (a NAT's
  // first mapping, sent in the same turn) does not. Unref'd: it never keeps a process alive.
  const starting = setImmediate(() => {
    // node:dgram loads on first use (start-up time).
    loadDgram().then((dgram) => {
      if (!closed) socket = listen(dgram)
    }, (error: unknown) => { debug('multicast listener %s:%d: %s', group, port, String(error)) })
  })
  starting.unref()
  function close (): void {
    if (closed) return
    closed = true
    clearImmediate(starting)
    try { socket?.close() } catch { /* never bound */ }
  }
  function listen (dgram: typeof import('node:dgram')): dgram.Socket {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    socket.on('error', (error) => {
      debug('multicast listener %s:%d: %s', group, port, error.message)
      close()
    })
    socket.on('message', (message, remote) => {
      if (sameAddress(remote.address, gateway)) onMessage(message)
    })
    socket.bind(port, () => {
      if (closed) return
      try {
        socket.addMembership(group, localAddress)
      } catch (error) {
        debug('multicast listener: cannot join %s on %s: %s', group, localAddress, (error as Error).message)
      }
    })
    // The listener serves mappings; it must not keep a process alive by itself.
    socket.unref()
    return socket
  }
  return { close }
}
