import type dgram from 'node:dgram'
import { PCP_CLIENT_PORT } from '../constants.js'
import { loadDgram } from './dgram.js'
import { sameAddress } from './ip-address.js'
import { decodeResponse as decodeNatPmp } from '../natpmp/codec.js'
import { decodeResponse as decodePcp } from '../pcp/codec.js'
import { debug } from '../debug.js'
import type { EpochTracker } from './epoch.js'

/** RFC 6886 §3.2.1 and RFC 6887 §14.1.3: gateways multicast announcements to all hosts. */
const ALL_HOSTS_GROUP = '224.0.0.1'

export interface AnnouncementListener {
  close: () => void
}

/**
 * Listens on port 5350 for the gateway's multicast announcements (a restart, a new external
 * address) and hands each datagram from the gateway to `onAnnouncement`. Listening is an
 * optimisation, never a requirement: when the port or the group cannot be joined, mappings still
 * recover at their next renewal.
 */
export function listenForAnnouncements (gateway: string, localAddress: string, onAnnouncement: (bytes: Uint8Array) => void): AnnouncementListener {
  return listenToGatewayMulticast({ port: PCP_CLIENT_PORT, group: ALL_HOSTS_GROUP, gateway, localAddress, onMessage: onAnnouncement })
}

export interface GatewayMulticastOptions {
  port: number
  group: string
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
export function listenToGatewayMulticast ({ port, group, gateway, localAddress, onMessage }: GatewayMulticastOptions): AnnouncementListener {
  let socket: dgram.Socket | undefined
  let closed = false
  // node:dgram loads on first use (start-up time): the socket comes a moment later.
  loadDgram().then((dgram) => {
    if (!closed) socket = listen(dgram)
  }, (error: unknown) => { debug('multicast listener %s:%d: %s', group, port, String(error)) })
  function close (): void {
    if (closed) return
    closed = true
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

/** What an unsolicited datagram from the gateway says. */
export interface Announcement {
  protocol: 'pcp' | 'nat-pmp'
  epochSeconds: number
  /** NAT-PMP announcements carry the external address. */
  externalAddress?: string
}

/**
 * Reads a gateway's announcement in either format: a PCP ANNOUNCE (RFC 6887 §14.1.3) or a NAT-PMP
 * address announcement (RFC 6886 §3.2.1). Both are sent after a boot, a restart or an address
 * change, that is whenever mappings may have been lost, so either tells a client of either
 * protocol to renew. Anything else is not an announcement: undefined.
 */
export function readAnnouncement (bytes: Uint8Array): Announcement | undefined {
  try {
    if (bytes[0] === 0) {
      const message = decodeNatPmp(bytes)
      if (message.opcode !== 'external-address' || message.truncated || message.resultCode !== 0) return undefined
      return { protocol: 'nat-pmp', epochSeconds: message.epochSeconds, ...(message.externalAddress === undefined ? {} : { externalAddress: message.externalAddress }) }
    }
    const message = decodePcp(bytes)
    if (message.kind !== 'response' || message.opcode !== 'announce') return undefined
    return { protocol: 'pcp', epochSeconds: message.epochSeconds }
  } catch {
    return undefined
  }
}

/**
 * An announcement as the client reports it: what it claims, and whether its epoch follows from
 * the gateway's replies (`epochs`), which it is compared with and never recorded in.
 */
export function announcementEvent (announcement: Announcement, epochs: EpochTracker): { kind: 'announcement', reason: string, epochContinues: boolean } {
  const what = announcement.protocol === 'pcp' ? 'PCP ANNOUNCE' : 'NAT-PMP address announcement'
  return { kind: 'announcement', reason: `${what} from the gateway (epoch ${announcement.epochSeconds} s)`, epochContinues: epochs.continues(announcement.epochSeconds) }
}
