import type { AddressScope } from '../net/ip-address.js'
import type { NatType } from './gateway-client.js'
import type { Mapping } from './mapping.js'

/** The payload of `changed` (and the NAT's `mapping-changed`): the mapping's address before and after. */
export interface MappingAddressChange {
  /** The mapping that changed. */
  mapping: Mapping
  /** The external address now (IPv6: our own address); undefined when the gateway did not say. */
  address: string | undefined
  /** The external port now. */
  port: number
  /** The external address before the change. */
  previousAddress: string | undefined
  /** The external port before the change. */
  previousPort: number
}

/** The payload of `established` (and the NAT's `mapping-established`). */
export interface MappingEstablished {
  /** The mapping the gateway granted. */
  mapping: Mapping
  /** The external address (IPv6: our own address); undefined when the gateway did not say. */
  address: string | undefined
  /** The external port the gateway granted, which may differ from the one asked for. */
  port: number
  /** The lease the gateway granted, in seconds (0: permanent). */
  lifetimeSeconds: number
  /** True when the mapping had been granted before and was lost (a lease that ran out, a move to another gateway). */
  recovered: boolean
}

/** The payload of `renewed` (and the NAT's `mapping-renewed`). */
export interface MappingRenewed {
  /** The mapping that was renewed. */
  mapping: Mapping
  /** The lease the gateway granted this time, in seconds. */
  lifetimeSeconds: number
}

/** The payload of `failed` (and the NAT's `mapping-failed`). */
export interface MappingFailed {
  /** The mapping; it keeps trying. */
  mapping: Mapping
  /** Why the attempt failed. */
  error: Error
}

/** The payload of `lost` (and the NAT's `mapping-lost`). */
export interface MappingLost {
  /** The mapping; it keeps trying to get it back. */
  mapping: Mapping
  /** Why the last attempt failed; undefined when none failed (the lease simply ran out). */
  error: Error | undefined
}

/** Events a Mapping emits. Its NAT re-emits each with a `mapping-` prefix. */
export interface MappingEvents {
  /** The gateway granted the mapping: the first time, or again after it was lost (`recovered`). */
  established: [event: MappingEstablished]
  /** A renewal kept the mapping as it was. */
  renewed: [event: MappingRenewed]
  /** The external port or address of the mapping changed. */
  changed: [event: MappingAddressChange]
  /** An attempt to create or renew failed; the mapping keeps trying. */
  failed: [event: MappingFailed]
  /** The mapping's lease ran out without a renewal; it keeps trying to get it back. */
  lost: [event: MappingLost]
}

/** The payload of the NAT's `external-address-changed`. */
export interface ExternalAddressChange {
  /** The gateway's external address now. */
  address: string
  /** The external address before. */
  previous: string
  /** What kind of address it is now (public, private, shared, ...). */
  scope: AddressScope
  /** Whether it is reachable from the internet (false behind another NAT). */
  isPublic: boolean
}

/** The payload of the NAT's `gateway-changed`. */
export interface GatewayChange {
  /** The protocol (and IGD version) spoken now. */
  type: NatType
  /** The gateway's address now. */
  gateway: string
  /** The protocol spoken before. */
  previousType: NatType
  /** The gateway's address before. */
  previousGateway: string
  /** Why the NAT moved: a new default route, or requests that kept failing. */
  reason: string
}

/** Events a NAT emits: its mappings' events, prefixed with `mapping-`, and its own. */
export interface NatEvents {
  /** A mapping of this NAT was established: see {@link MappingEvents.established}. */
  'mapping-established': MappingEvents['established']
  /** A mapping of this NAT was renewed: see {@link MappingEvents.renewed}. */
  'mapping-renewed': MappingEvents['renewed']
  /** A mapping of this NAT changed: see {@link MappingEvents.changed}. */
  'mapping-changed': MappingEvents['changed']
  /** An attempt of a mapping of this NAT failed: see {@link MappingEvents.failed}. */
  'mapping-failed': MappingEvents['failed']
  /** A mapping of this NAT was lost: see {@link MappingEvents.lost}. */
  'mapping-lost': MappingEvents['lost']
  /** The gateway reported a different external address than before. */
  'external-address-changed': [event: ExternalAddressChange]
  /** The gateway lost its mappings (a restart, seen in its epoch or announcements); all are being re-created. */
  'gateway-reset': [event: {
    /** What showed the restart (an epoch that went back, an announcement, a NOTIFY, a rule gone). */
    reason: string
  }]
  /** The NAT moved to another gateway or protocol (a network change, a protocol that stopped working). */
  'gateway-changed': [event: GatewayChange]
}
