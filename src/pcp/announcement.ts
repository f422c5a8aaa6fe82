import { PCP_CLIENT_PORT } from '../constants.js'
import { decodeResponse as decodeNatPmp } from '../natpmp/codec.js'
import type { MulticastGroup } from '../net/multicast.js'
import { decodeResponse as decodePcp } from './codec.js'

/**
 * RFC 6886 §3.2.1 and RFC 6887 §14.1.3: gateways multicast announcements to all hosts on port
 * 5350. PCP and NAT-PMP share the group, and each client reads the other's format too.
 */
export const ANNOUNCEMENT_GROUP: Readonly<MulticastGroup> = { group: '224.0.0.1', port: PCP_CLIENT_PORT }

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
