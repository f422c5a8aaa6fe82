import type { AddressScope } from '../net/ip-address.js'
import type { NatType } from './gateway-client.js'
import type { Mapping } from './mapping.js'

export interface MappingAddressChange {
  mapping: Mapping
  address: string | undefined
  port: number
  previousAddress: string | undefined
  previousPort: number
}

/** Events a Mapping emits. Its NAT re-emits each with a `mapping-` prefix. */
export interface MappingEvents {
  /**
   * The gateway granted the mapping: the first time, or again after it was lost (`recovered`:
   * a lease that ran out, a move to another gateway).
   */
  established: [event: { mapping: Mapping, address: string | undefined, port: number, lifetimeSeconds: number, recovered: boolean }]
  /** A renewal kept the mapping as it was. */
  renewed: [event: { mapping: Mapping, lifetimeSeconds: number }]
  /** The external port or address of the mapping changed. */
  changed: [event: MappingAddressChange]
  /** An attempt to create or renew failed; the mapping keeps trying. */
  failed: [event: { mapping: Mapping, error: Error }]
  /** The mapping's lease ran out without a renewal; it keeps trying to get it back. */
  lost: [event: { mapping: Mapping, error: Error | undefined }]
}

export interface NatEvents {
  'mapping-established': MappingEvents['established']
  'mapping-renewed': MappingEvents['renewed']
  'mapping-changed': MappingEvents['changed']
  'mapping-failed': MappingEvents['failed']
  'mapping-lost': MappingEvents['lost']
  /** The gateway reported a different external address than before. */
  'external-address-changed': [event: { address: string, previous: string, scope: AddressScope, isPublic: boolean }]
  /** The gateway lost its mappings (a restart, seen in its epoch or announcements); all are being re-created. */
  'gateway-reset': [event: { reason: string }]
  /** The NAT moved to another gateway or protocol (a network change, a protocol that stopped working). */
  'gateway-changed': [event: { type: NatType, gateway: string, previousType: NatType, previousGateway: string, reason: string }]
}
