/**
 * natmapper for js-libp2p: a NAT traversal service in place of `@libp2p/upnp-nat`. It maps the
 * node's listen ports over PCP, NAT-PMP or UPnP IGD (IPv4), opens IPv6 pinholes, announces the
 * external addresses, and keeps them right when the gateway restarts or its address changes.
 * Needs Node.js 22 or later (as js-libp2p 3) and `@libp2p/interface`, `@multiformats/multiaddr`.
 *
 * @example
 * ```ts
 * import { createLibp2p } from 'libp2p'
 * import { tcp } from '@libp2p/tcp'
 * import { natMapper } from 'natmapper/libp2p'
 *
 * const node = await createLibp2p({
 *   addresses: { listen: ['/ip4/0.0.0.0/tcp/0', '/ip6/::/tcp/0'] },
 *   transports: [tcp()],
 *   services: {
 *     nat: natMapper({ autoConfirmAddress: true })   // or keep autonat to verify the addresses
 *   }
 * })
 * // soon: node.getMultiaddrs() includes /ip4/<gateway's external address>/tcp/<external port>
 * ```
 *
 * @module natmapper/libp2p
 */
import { resolveNatMapperInit, type NatMapperInit } from './options.js'
import { NatMapperService, type NatMapperComponents } from './service.js'

export type { NatMapperInit } from './options.js'
export type { NatMapperComponents, NatMapperService } from './service.js'
export type { AddressAnnouncer } from './family-gateway.js'
export type { AddressWithType } from './listen-addresses.js'

/**
 * The service factory for `services: { nat: natMapper(init) }`. Options are checked here, so a
 * bad one fails createLibp2p() with an InvalidArgumentError that names it.
 */
export function natMapper (init: NatMapperInit = {}): (components: NatMapperComponents) => NatMapperService {
  const resolved = resolveNatMapperInit(init)
  return (components) => new NatMapperService(components, resolved)
}
