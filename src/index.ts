/**
 * natmapper: find the NAT gateway in front of this host and keep port mappings open on it,
 * over PCP (RFC 6887), NAT-PMP (RFC 6886) and UPnP IGD.
 *
 * @example
 * ```ts
 * import { discoverNAT } from 'natmapper'
 *
 * await using nat = await discoverNAT()
 * const mapping = await nat.newMapping('tcp', 8080)
 * mapping.on('established', ({ port }) => console.log('reachable on external port', port))
 * const { address, port } = await mapping.externalAddr()   // NoMappingError until established
 * ```
 *
 * @module natmapper
 */
export { MAPPING_DURATION, CACHE_TIME, DEFAULT_DISCOVERY_TIMEOUT } from './constants.js'
export { discoverNAT, probeGateway, type GatewayProbe } from './discover.js'
export type { ProbeReport } from './core/probe.js'
export type { KernelRoute } from './net/route-to-internet.js'
export { mapEveryFamily, type EveryFamilyMapping } from './every-family.js'
export { NAT } from './core/nat.js'
export { Mapping, type MappingAddress } from './core/mapping.js'
export type {
  MappingEvents, NatEvents, MappingAddressChange, MappingEstablished, MappingRenewed, MappingFailed, MappingLost,
  ExternalAddressChange, GatewayChange
} from './core/events.js'
export type { NatStats, ProtocolStats, AnswerCount } from './core/stats.js'
export type { NatType, TransportProtocol, RequestOptions, GatewayMappingEntry } from './core/gateway-client.js'
export { addressScope, isPubliclyRoutable, type AddressScope } from './net/ip-address.js'
export type { DiscoverOptions, MappingOptions } from './options.js'
export { wireChannel, noteChannel, type WireMessage, type WireNote } from './core/trace.js'
export {
  NatMapperError,
  InvalidArgumentError,
  NoMappingError,
  NoNATFoundError,
  NoDefaultGatewayError,
  NoNextHopError,
  GatewayResultError,
  MalformedMessageError,
  MappingNotHeldError,
  PortUnreachableError,
  UnsupportedError,
  TimeoutError,
  AbortError,
  ClosedError,
  NetworkError,
  ForeignMappingError,
  GatewayRefusesEverythingError,
  type WireProtocol
} from './errors.js'
