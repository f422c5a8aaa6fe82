import type { Socket } from 'node:dgram'
import type { WireProtocol } from '../errors.js'
import type { ExchangeCounters } from '../net/counters.js'
import type { MulticastGroup } from '../net/multicast.js'
import type { RequestOptions } from '../net/request.js'
/**
 * The seam between the core (NAT, Mapping, timers) and the protocols. Each protocol folder
 * provides a `ProtocolProbe` that finds its gateway and yields a `GatewayClient`; the core never
 * looks inside a protocol's messages.
 */

/** Which protocol a NAT is driven by. */
export type NatType = 'pcp' | 'nat-pmp' | 'upnp-igd1' | 'upnp-igd2'

/** The transport protocol of a mapping. */
export type TransportProtocol = 'tcp' | 'udp'

// Every waiting call's options; defined below core, where the UDP channel takes them too.
export type { RequestOptions }

export interface PortMappingRequest {
  protocol: TransportProtocol
  internalPort: number
  /** 0 lets the gateway choose. */
  suggestedExternalPort: number
  /** The external address we would like to keep (PCP honours it); undefined for any. */
  suggestedExternalAddress?: string
  /** Lifetime to ask for, in seconds (what goes on the wire). */
  lifetimeSeconds: number
  /** Human-readable label, shown by UPnP routers. */
  description: string
}

/** What the gateway actually granted. The core schedules renewals from this, never from the request. */
export interface PortMappingGrant {
  protocol: TransportProtocol
  internalPort: number
  externalPort: number
  /** Present when the protocol reports it with the mapping (PCP); otherwise ask externalAddress(). */
  externalAddress?: string
  /** Granted lifetime in seconds; 0 means permanent (UPnP routers that only do static leases). */
  lifetimeSeconds: number
  /** The gateway's epoch (seconds since its state was reset), where the protocol has one. */
  epochSeconds?: number
  /** Whatever the protocol needs to renew or delete this mapping (a PCP nonce, a UPnP lease kind). */
  protocolState?: unknown
}

export interface GatewayClient {
  readonly type: NatType
  /** The gateway's address as we talk to it. */
  readonly gateway: string
  /** Our own address on the link that faces the gateway. */
  readonly localAddress: string
  /** The gateway's external (WAN) address. */
  externalAddress (options: RequestOptions): Promise<string>
  /** Create or renew a mapping. `previous` is the last grant for the same mapping, if any. */
  map (request: PortMappingRequest, previous: PortMappingGrant | undefined, options: RequestOptions): Promise<PortMappingGrant>
  /** Delete a mapping at the gateway. */
  unmap (grant: PortMappingGrant, options: RequestOptions): Promise<void>
  /**
   * Delete a mapping this client may not have made (another process, an earlier run), by what
   * identifies it on this protocol. PCP can only with the cache file its creator used (the nonce
   * is derived from it), else it rejects with UnsupportedError. Where a
   * delete could reach another host's entry (UPnP), it is refused with ForeignMappingError
   * unless `force`.
   */
  deleteMapping? (protocol: TransportProtocol, internalPort: number, externalPort: number, options: RequestOptions & { force?: boolean }): Promise<void>
  /** The gateway's mapping table, where the protocol can list it (UPnP). */
  listMappings? (options: RequestOptions): Promise<GatewayMappingEntry[]>
  /** Set by the NAT that owns the client: what the client learns between or beside requests. */
  onEvent?: (event: GatewayEvent) => void
  /**
   * Called by the NAT that owns the client: where to count requests, retransmissions, timeouts
   * and answers from now on, under the protocol each exchange speaks (a PCP client asks the same
   * gateway's NAT-PMP for the address).
   */
  countInto? (counters: CountersByProtocol): void
  /**
   * Where the gateway multicasts the unsolicited news this client reads on our IPv4 link:
   * 224.0.0.1:5350 for PCP and NAT-PMP (handleAnnouncement), 239.255.255.250:1900 for UPnP
   * (handleNotify). The NAT joins it; the protocol knows the numbers.
   */
  readonly newsGroup?: Readonly<MulticastGroup>
  /**
   * Interprets an unsolicited datagram the gateway multicast to port 5350 (RFC 6886 §3.2.1,
   * RFC 6887 §14.1.3), reporting it through `onEvent` as an `announcement`: anyone on the LAN can
   * send one with the gateway's address, so it is a reason to ask, never a fact. Present on PCP and NAT-PMP.
   */
  handleAnnouncement? (bytes: Uint8Array): void
  /**
   * One request that shows whether the gateway lost its state (its epoch) or changed its external
   * address, reported through `onEvent` as `reset` or `external-address`. Present where
   * `handleAnnouncement` is: the NAT checks this way before it believes an announcement.
   */
  checkGateway? (options: RequestOptions): Promise<void>
  /**
   * Interprets an SSDP NOTIFY the gateway multicast to 239.255.255.250:1900 (UDA 1.1 §1.2: alive,
   * byebye, a new BOOTID after a restart), reporting what it means through `onEvent`. Present on UPnP.
   */
  handleNotify? (bytes: Uint8Array): void
  /** Release sockets, agents and timers. Idempotent. */
  close (): Promise<void>
}

/** The NAT's counters for each protocol's exchanges (see core/stats.ts). */
export type CountersByProtocol = Readonly<Record<WireProtocol, ExchangeCounters>>

/** What a client reports to its NAT outside the request it was asked to make. */
export type GatewayEvent =
  /** The gateway lost its mapping state (an epoch that jumped, an announcement, a new BOOTID). */
  | { kind: 'reset', reason: string }
  /** The gateway reported this external address. */
  | { kind: 'external-address', address: string }
  /**
   * An announcement arrived from the gateway's address. `epochContinues`: the epoch it carries
   * follows from the gateway's replies, so only a gateway whose epoch survives its restarts (or
   * someone who copied it) could have sent it; a spoofed epoch 0 does not.
   */
  | { kind: 'announcement', reason: string, epochContinues: boolean }

/** One row of a gateway's mapping table. */
export interface GatewayMappingEntry {
  /** The transport protocol of the rule. */
  protocol: TransportProtocol
  /** The port the gateway forwards. */
  externalPort: number
  /** The LAN host it forwards to. */
  internalClient: string
  /** The port on that host. */
  internalPort: number
  /** The description the mapping's owner gave. */
  description: string
  /** Remaining seconds; 0 for a permanent lease. */
  lifetimeSeconds: number
  /** Whether the gateway applies the rule (UPnP can hold disabled ones). */
  enabled: boolean
}

/** What discovery knows before it probes. */
export interface ProbeContext {
  /** The gateway to probe (from the default route, or the caller's `gateway` option). */
  gateway: string
  /** Our address on the link facing the gateway. */
  localAddress: string
  /** Aborted when discovery settles or times out: a probe must then stop and release everything. */
  signal: AbortSignal
  /** A file where a probe may remember the gateway that worked, for the next process (DiscoverOptions.gatewayCacheFile). */
  cacheFile?: string
  /** False: do not try a remembered gateway (DiscoverOptions.rememberGateway). */
  rememberGateway?: boolean
  /** The UPnP description URL the caller gave (DiscoverOptions.upnpDescriptionUrl): fetched before any search. */
  descriptionUrl?: URL
  /**
   * The UDP socket discovery connected to the gateway's port 5351 to learn our address, for the
   * first probe that speaks on that port to adopt: its first request then goes out at once, ahead
   * of the other probes' set-up, instead of after a socket of its own has connected. Undefined
   * once taken, or when there is none (IPv6).
   */
  takeSocket?: () => Socket | undefined
}

/** One protocol's discovery: resolves with a ready client, or rejects saying why not. */
export type ProtocolProbe = (context: ProbeContext) => Promise<GatewayClient>

/**
 * Where the core gets each protocol's probe (src/protocols.ts owns the list): the core knows no
 * wire format, and a protocol's code is loaded only when its probe starts.
 */
export type ProbeRegistry = (protocol: 'pcp' | 'nat-pmp' | 'upnp', family: 'IPv4' | 'IPv6') => ProtocolProbe
