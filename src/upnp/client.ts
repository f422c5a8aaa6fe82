/**
 * UPnP IGD v1/v2 behind the core's GatewayClient seam: the second half of discovery (description
 * → WAN service, connectToGateway) and the client that maps, renews and deletes ports with SOAP.
 * The probe (probe.ts) imports this module when the gateway answers its SSDP search.
 *
 * @example
 * ```ts
 * // upnpProbe from './probe.js'
 * const client = await upnpProbe({ gateway: '192.168.1.1', localAddress: '192.168.1.20', signal })
 * const grant = await client.map({ protocol: 'udp', internalPort: 4001, suggestedExternalPort: 4001,
 *   lifetimeSeconds: 3600, description: 'my app' }, undefined, {})
 * await client.unmap(grant, {})
 * await client.close()
 * ```
 */
import { isIP, isPubliclyRoutable, sameAddress } from '../net/ip-address.js'
import { publishNote } from '../core/trace.js'
import { anySignal, withDeadline } from '../core/deadline.js'
import type {
  CountersByProtocol,
  GatewayClient,
  GatewayEvent,
  GatewayMappingEntry,
  PortMappingGrant,
  PortMappingRequest,
  ProbeContext,
  RequestOptions,
  TransportProtocol
} from '../core/gateway-client.js'
import { allowManyListeners, RequestLimiter } from '../core/limiter.js'
import {
  ClosedError,
  ForeignMappingError,
  GatewayResultError,
  InvalidArgumentError,
  MappingNotHeldError,
  UnsupportedError
} from '../errors.js'
import { debug } from '../debug.js'
import {
  IGD2_MAX_LEASE_SECONDS,
  MAX_DESCRIPTION_BYTES,
  MAX_PORT_ATTEMPTS,
  MAX_SOAP_RESPONSE_BYTES,
  MIN_RANDOM_EXTERNAL_PORT,
  SSDP_NOTIFY_GROUP,
} from './constants.js'
import { decodeDeviceDescription, isTr064ServiceType, type DeviceDescription, type FirewallControlService, type WanService, type WanServiceKind } from './description.js'
import { expectSuccess, httpExchange, loadTcp } from './http.js'
import { REQUEST_HEADERS, soapCall } from './soap-call.js'
import type { ExchangeCounters } from '../net/counters.js'
import {
  decodeExternalIPAddress,
  decodePortMappingEntry,
  decodeReservedPort,
  decodeStatusInfo,
  SoapActions,
  UpnpErrorCode,
  type PortMappingArguments,
  type PortMappingEntry,
  type SoapRequest,
  type StatusInfo,
  type UpnpProtocol
} from './soap.js'
import { checkInteger, type ResolvedUpnpProbeOptions } from './probe.js'

/** The IPv6 pinhole client travels in this module's chunk (see createUpnpPinholeProbe). */
export { UpnpPinholeClient } from './pinhole-client.js'
import { decodeNotify, type SearchResponse } from './ssdp.js'
import { followAnnouncedHost } from './same-router.js'
import { hostOf, trustedControlUrl, zoneOf } from './trust.js'
import { loadXmlParser } from './xml.js'

/** What the client knows of a grant it issued (kept beside it, not in it). */
interface IssuedGrant {
  /** When the gateway granted it (ms since the epoch). */
  at: number
  /** The lease the gateway holds from then, in seconds; 0 for permanent. */
  leaseSeconds: number
  /** Renewals since the mapping was last added. */
  renewals: number
}

/** What a UPnP grant remembers so that renewals and deletion do the right thing. */
export interface UpnpMappingState {
  /** 'permanent' when the gateway only grants static leases (725): renew with 0 and delete explicitly. */
  leaseKind: 'timed' | 'permanent'
}

export interface GatewayLocation {
  /** The description URL, pointed at the gateway. */
  location: URL
  /** LOCATION as the gateway announced it. */
  announced: URL
  /**
   * The search answer that gave the location (its USN and BOOTID identify the device's boot);
   * none for a remembered gateway, whose BOOTID the first NOTIFY then tells.
   */
  response?: SearchResponse
  context: ProbeContext
  options: ResolvedUpnpProbeOptions
  signal: AbortSignal
  /** The WAN service chosen last time (a remembered gateway): used again, without choosing anew. */
  service?: { serviceType: string, controlUrl: string }
}

/**
 * Fetches and reads the description, keeps the WAN services on the gateway, and builds the client.
 * On IPv6, a LOCATION naming another address than the gateway's is followed when it is shown to
 * be the gateway's own (see same-router.ts); otherwise the gateway's own address is asked instead.
 */
export async function connectToGateway (found: GatewayLocation): Promise<UpnpClient> {
  const { announced, context, signal } = found
  const host = hostOf(announced)
  // IPv4, and a LOCATION naming the gateway itself, cost nothing more.
  if (isIP(host) !== 6 || isIP(context.gateway) !== 6 || sameAddress(host, context.gateway)) {
    return await describeGateway(found, { zone: zoneOf(context.gateway) })
  }
  const follow = await followAnnouncedHost(context.gateway, host, found.options.sameRouter)
  let refusal = follow.refused
  if (follow.refused === undefined) {
    try {
      return await describeGateway({ ...found, location: announced }, { zone: follow.zone, followed: host, beforeRequest: follow.verify })
    } catch (error) {
      if (signal.aborted) throw error
      refusal = (error as Error).message
    }
  }
  const note = `LOCATION ${announced.href} not followed: ${refusal ?? ''}; asking the gateway's own address ${found.location.host} instead`
  publishNote('upnp', context.gateway, note)
  debug('upnp: %s', note)
  try {
    return await describeGateway(found, { zone: zoneOf(context.gateway) })
  } catch (error) {
    if (signal.aborted) throw error
    throw new UnsupportedError(`upnp: ${note}, which failed too: ${(error as Error).message}`, { cause: error })
  }
}

interface DescribeOptions {
  /** The interface a link-local URL host is on. */
  zone: string | undefined
  /** The announced host, shown to be the gateway's own address: its URLs are kept as named. */
  followed?: string
  /** Checks the connection to a followed host before the request goes out. */
  beforeRequest?: (connection: { remoteAddress: string | undefined }) => Promise<void>
}

async function describeGateway ({ location, announced, response: searchResponse, context, options, signal, service: chosen }: GatewayLocation, { zone, followed, beforeRequest }: DescribeOptions): Promise<UpnpClient> {
  const { response, localAddress } = await withDeadline(`upnp: GET ${location.href}`, { signal, timeout: options.requestTimeout }, async (deadline) =>
    await httpExchange({ method: 'GET', url: location, headers: REQUEST_HEADERS, maxBodyBytes: MAX_DESCRIPTION_BYTES, signal: deadline, zone, beforeRequest }))
  expectSuccess(response, `upnp: GET ${location.href}`)
  const description = decodeDeviceDescription(utf8(response.body), location)

  const announcedHost = hostOf(announced)
  const trusted = (service: { controlUrl: URL }): URL | undefined => trustedControlUrl(service.controlUrl, context.gateway, announcedHost, followed)
  const services = description.wanServices
    .flatMap((service) => {
      const controlUrl = trusted(service)
      return controlUrl === undefined ? [] : [{ ...service, controlUrl }]
    })
    // A box that offers a service under both names: the UPnP Forum's first (TR-064's may ask for a login).
    .sort((a, b) => SERVICE_PREFERENCE[a.kind] - SERVICE_PREFERENCE[b.kind] || Number(isTr064ServiceType(a.serviceType)) - Number(isTr064ServiceType(b.serviceType)))
  const remembered = chosen === undefined ? -1 : services.findIndex((service) => service.serviceType === chosen.serviceType && service.controlUrl.href === chosen.controlUrl)
  if (remembered > 0) services.unshift(...services.splice(remembered, 1))
  if (services.length === 0) {
    throw new UnsupportedError(description.wanServices.length === 0
      ? `upnp: ${location.href} offers no WANIPConnection or WANPPPConnection service`
      : `upnp: every WAN service at ${location.href} has its control URL off the gateway; refused`)
  }
  const firewallControlUrl = description.firewallControl === undefined ? undefined : trusted(description.firewallControl)
  const client = new UpnpClient({
    gateway: context.gateway,
    // The address the gateway sees our connection come from is the one it can forward to.
    localAddress: localAddress ?? context.localAddress,
    descriptionUrl: location,
    zone,
    description,
    ...(searchResponse?.bootId === undefined ? {} : { bootId: searchResponse.bootId }),
    ...(searchResponse?.usn === undefined ? {} : { usn: searchResponse.usn }),
    services,
    firewallControl: firewallControlUrl === undefined || description.firewallControl === undefined
      ? undefined
      : { serviceType: description.firewallControl.serviceType, controlUrl: firewallControlUrl },
    requestTimeout: options.requestTimeout,
    maxConcurrentRequests: options.maxConcurrentRequests,
    randomPort: options.randomPort
  })
  if (services.length > 1 && remembered === -1) {
    try {
      await client.selectService({ signal, timeout: options.requestTimeout * services.length })
    } catch (error) {
      await client.close()
      throw error
    }
  }
  return client
}

/** Loads what talking to the gateway needs beyond this module: the XML parser and node:net. */
export async function preloadGatewayDependencies (): Promise<void> {
  loadXmlParser()
  await loadTcp()
}

/** WANIPConnection:2 first (AddAnyPortMapping, lease limits we know), PPP last. */
const SERVICE_PREFERENCE: Readonly<Record<WanServiceKind, number>> = {
  'WANIPConnection:2': 0,
  'WANIPConnection:1': 1,
  'WANPPPConnection:1': 2
}

/** Most device uuids remembered from NOTIFYs (miniupnpd's IGD has three). */
const MAX_DEVICE_UUIDS = 16
/**
 * Every this many renewals, a mapping is deleted and added again instead of renewed: a rule the
 * router lost behind its own back (a firewall reload) forwards again within this many renewal
 * periods, even where nothing tells us it stopped. Connections already established through it
 * survive (the router's connection tracking keeps them; see the README).
 */
export const RECREATE_EVERY_RENEWALS = 9
/** Below this gap (or a tenth of the lease), a remaining lease shorter than expected is rounding and latency, not a renewal ignored. */
const LEASE_SLACK_SECONDS = 1.5
/** listMappings() stops here: a table this long is a router bug or a loop. */
const MAX_LISTED_MAPPINGS = 1_024

export interface UpnpClientInit {
  gateway: string
  localAddress: string
  /** The interface a link-local URL host is on (the gateway's zone). */
  zone?: string | undefined
  descriptionUrl: URL
  description: DeviceDescription
  /** BOOTID.UPNP.ORG from the search answer, if the gateway sent one. */
  bootId?: number
  /** USN from the search answer: its uuid names the device whose NOTIFYs count. */
  usn?: string
  /** Trusted WAN services, most preferred first; the first is used until selectService() picks another. */
  services: WanService[]
  firewallControl?: FirewallControlService | undefined
  requestTimeout: number
  maxConcurrentRequests: number
  randomPort: () => number
}

/** Maps ports on one UPnP IGD through one WAN connection service. */
export class UpnpClient implements GatewayClient {
  readonly type: 'upnp-igd1' | 'upnp-igd2'
  readonly newsGroup = SSDP_NOTIFY_GROUP
  readonly gateway: string
  /** Our address as the gateway sees it: the internal client of every mapping. */
  readonly localAddress: string
  /** The interface a link-local URL host is on (the gateway's zone). */
  readonly zone: string | undefined
  readonly descriptionUrl: URL
  readonly description: DeviceDescription
  /** WANIPv6FirewallControl, when the gateway offers it on a trusted URL (not used yet). */
  readonly firewallControl: FirewallControlService | undefined
  /** The external address last reported by the gateway; the core reads it after discovery. */
  lastExternalAddress: string | undefined
  onEvent: ((event: GatewayEvent) => void) | undefined

  readonly #services: readonly WanService[]
  #service: WanService
  readonly #limiter: RequestLimiter
  readonly #requestTimeout: number
  readonly #randomPort: () => number
  /**
   * Aborts every request in flight on close(). Each request listens to it while it waits, so a
   * burst (a gateway reset renewing every mapping at once) puts many listeners on it; that is not
   * a leak (found by the soak: MaxListenersExceededWarning with 13 mappings moving at once).
   */
  readonly #shutdown = new AbortController()
  #closed = false
  /** Learnt from a 725 answer (or 402 to a timed lease): this gateway grants static leases only. */
  #onlyPermanentLeases = false
  /** Learnt from a 402 answer to a permanent lease: this gateway grants at most a week. */
  #noPermanentLeases = false
  /** Cleared when a gateway that claims IGDv2 does not implement AddAnyPortMapping. */
  #addAnyPortMapping: boolean
  /** The gateway's boot instance as last announced (BOOTID.UPNP.ORG). */
  #bootId: number | undefined
  /** The uuids of the gateway's devices (root and embedded): whose NOTIFYs we read. */
  readonly #deviceUuids = new Set<string>()
  /** The gateway said ssdp:byebye: its next ssdp:alive means it came back, whatever its BOOTID. */
  #saidByebye = false
  /** Grants already reported lost (a reset), so that their retries do not report it again. */
  readonly #reportedLost = new WeakSet<PortMappingGrant>()
  /** What each grant this client issued holds: when, for how long, and its place in the recreate cycle. */
  readonly #issued = new WeakMap<PortMappingGrant, IssuedGrant>()
  #counters: ExchangeCounters | undefined

  constructor (init: UpnpClientInit) {
    const first = init.services[0]
    if (first === undefined) throw new InvalidArgumentError('a UPnP client needs a WAN service')
    allowManyListeners(this.#shutdown.signal)
    this.type = init.description.igdVersion === 2 ? 'upnp-igd2' : 'upnp-igd1'
    this.gateway = init.gateway
    this.localAddress = init.localAddress
    this.zone = init.zone
    this.descriptionUrl = init.descriptionUrl
    this.description = init.description
    this.firewallControl = init.firewallControl
    this.lastExternalAddress = undefined
    this.#services = init.services
    this.#service = first
    this.#limiter = new RequestLimiter(init.maxConcurrentRequests)
    this.#requestTimeout = init.requestTimeout
    this.#randomPort = init.randomPort
    this.#addAnyPortMapping = first.kind === 'WANIPConnection:2'
    this.#bootId = init.bootId
    const uuid = uuidOf(init.usn)
    if (uuid !== undefined) this.#deviceUuids.add(uuid)
  }

  /** The WAN connection service requests go to. */
  get service (): WanService {
    return this.#service
  }

  /** The most requests that were ever in flight at once (tests check the bound). */
  get peakConcurrentRequests (): number {
    return this.#limiter.peak
  }

  countInto (counters: CountersByProtocol): void {
    this.#counters = counters.upnp
  }

  async externalAddress (options: RequestOptions = {}): Promise<string> {
    return await this.#run('GetExternalIPAddress', options, async (signal) => await this.#externalAddressOf(this.#service, signal))
  }

  async map (request: PortMappingRequest, previous: PortMappingGrant | undefined, options: RequestOptions = {}): Promise<PortMappingGrant> {
    checkMappingRequest(request)
    return await this.#run(`map ${request.protocol} port ${request.internalPort}`, options, async (signal) => await this.#map(request, previous, signal))
  }

  /**
   * Deletes the mapping for real, whatever its protocol; a mapping already gone (714) counts as
   * deleted. UPnP deletes by external port alone, and a router without secure mode deletes any
   * host's entry: so the entry is read first, and one that is no longer ours (our lease ran out
   * unnoticed and another host took the port) is left alone.
   */
  async unmap (grant: PortMappingGrant, options: RequestOptions = {}): Promise<void> {
    await this.#delete(grant.protocol, grant.externalPort, options, (entry) => {
      if (entry === undefined || this.#ours(entry)) return true
      debug('upnp: %s port %d is now %s:%d\'s, not ours: not deleted', grant.protocol, grant.externalPort, entry.internalClient, entry.internalPort)
      return false
    })
  }

  /** Reads the entry for `externalPort`, asks `shouldDelete`, and deletes it (714 counts as deleted). */
  async #delete (protocol: TransportProtocol, externalPort: number, options: RequestOptions, shouldDelete: ((entry: PortMappingEntry | undefined) => boolean) | undefined): Promise<void> {
    const key = { remoteHost: '', externalPort, protocol: upnpProtocol(protocol) }
    await this.#run(`unmap ${protocol} port ${externalPort}`, options, async (signal) => {
      try {
        if (shouldDelete !== undefined && !shouldDelete(await this.#entryToCheck(key, signal))) return
        await this.#soap(SoapActions.deletePortMapping(key), signal)
      } catch (error) {
        if (error instanceof GatewayResultError && error.resultCode === UpnpErrorCode.NoSuchEntryInArray) return
        throw error
      }
    })
  }

  /**
   * The gateway's entry before a delete: undefined when it cannot tell (a router without
   * GetSpecificPortMappingEntry deletes as before, and its own secure mode decides); 714 is thrown.
   */
  async #entryToCheck (key: { remoteHost: string, externalPort: number, protocol: 'TCP' | 'UDP' }, signal: AbortSignal): Promise<PortMappingEntry | undefined> {
    try {
      return decodePortMappingEntry(await this.#soap(SoapActions.getSpecificPortMappingEntry(key), signal), 'GetSpecificPortMappingEntry')
    } catch (error) {
      if (error instanceof GatewayResultError && error.resultCode === UpnpErrorCode.NoSuchEntryInArray) throw error
      if (signal.aborted) throw error
      return undefined
    }
  }

  #ours (entry: PortMappingEntry): boolean {
    return sameAddress(entry.internalClient, this.localAddress)
  }

  /**
   * A NOTIFY from the gateway's address. miniupnpd, like most IGDs, multicasts ssdp:byebye when
   * it stops and ssdp:alive with a new BOOTID.UPNP.ORG when it starts, having forgotten every
   * mapping that was not in its lease file: either is reported as a reset at once, so the NAT
   * renews every mapping without waiting for the check before the next renewal. Only the
   * description we use counts (a media server on the router announces its own boots).
   */
  handleNotify (bytes: Uint8Array): void {
    let notification
    try {
      notification = decodeNotify(bytes)
    } catch {
      return
    }
    const uuid = uuidOf(notification.usn)
    if (notification.kind === 'alive' && notification.location !== undefined && sameDescription(notification.location, this.descriptionUrl)) {
      // Embedded devices announce the same description: learn their uuids (bounded) for byebye.
      if (uuid !== undefined && this.#deviceUuids.size < MAX_DEVICE_UUIDS) this.#deviceUuids.add(uuid)
      const restarted = this.#saidByebye || (notification.bootId !== undefined && this.#bootId !== undefined && notification.bootId !== this.#bootId)
      const previousBootId = this.#bootId
      this.#bootId = notification.bootId ?? this.#bootId
      this.#saidByebye = false
      if (restarted) {
        this.onEvent?.({ kind: 'reset', reason: previousBootId !== this.#bootId && previousBootId !== undefined
          ? `the gateway restarted (SSDP BOOTID ${previousBootId} → ${String(this.#bootId)})`
          : 'the gateway restarted (SSDP byebye, then alive)' })
      }
    } else if (notification.kind === 'byebye' && uuid !== undefined && this.#deviceUuids.has(uuid)) {
      this.#saidByebye = true
    }
  }

  async statusInfo (options: RequestOptions = {}): Promise<StatusInfo> {
    return await this.#run('GetStatusInfo', options, async (signal) => decodeStatusInfo(await this.#soap(SoapActions.getStatusInfo(), signal)))
  }

  /**
   * Before a renewal, asks whether the gateway still holds what it granted: a restarted router,
   * or one whose table overflowed, forgets mappings silently, and AddPortMapping succeeding again
   * would hide that. A missing entry is reported as a reset, so that the NAT renews every mapping
   * at once. A gateway that cannot answer the question is not held against it.
   *
   * The entry's remaining lease also tells whether the last renewal extended it: Tomato's
   * miniupnpd answers a repeated AddPortMapping with success and keeps the first expiry
   * (miniupnp #131, #199), so the mapping would die at its first lease's end.
   */
  async #checkStillHeld (grant: PortMappingGrant, signal: AbortSignal): Promise<'held' | 'lost' | 'not-extended'> {
    const key = { remoteHost: '', externalPort: grant.externalPort, protocol: upnpProtocol(grant.protocol) }
    let entry: PortMappingEntry | undefined
    try {
      entry = decodePortMappingEntry(await this.#soap(SoapActions.getSpecificPortMappingEntry(key), signal), 'GetSpecificPortMappingEntry')
    } catch (error) {
      if (!(error instanceof GatewayResultError) || error.resultCode !== UpnpErrorCode.NoSuchEntryInArray) return 'held'
    }
    if (entry === undefined || entry.internalPort !== grant.internalPort || !sameAddress(entry.internalClient, this.localAddress)) {
      // Once per grant: the retries of a mapping the gateway keeps refusing renew from the same
      // grant, and a reset for each made the NAT renew every mapping again and again instead of
      // backing off (found by the soak against a miniupnpd that could no longer add rules).
      if (this.#reportedLost.has(grant)) return 'lost'
      this.#reportedLost.add(grant)
      this.onEvent?.({ kind: 'reset', reason: `the gateway no longer holds ${grant.protocol} port ${grant.externalPort} for us` })
      return 'lost'
    }
    const issued = this.#issued.get(grant)
    // A lease of 0, or more than we hold, says nothing about the expiry (miniupnp #466, #398).
    if (issued === undefined || issued.leaseSeconds === 0 || entry.leaseDuration <= 0 || entry.leaseDuration > issued.leaseSeconds) return 'held'
    const expected = issued.leaseSeconds - (Date.now() - issued.at) / 1000
    return entry.leaseDuration < expected - Math.max(LEASE_SLACK_SECONDS, issued.leaseSeconds / 10) ? 'not-extended' : 'held'
  }

  /**
   * Asks the gateway whether it holds a mapping it has just added. A router whose table is full
   * answers AddPortMapping with success and adds nothing (Linksys, bitletorg/weupnp#12). The entry
   * also tells the lease really granted (some routers shorten it). A gateway that cannot answer
   * the question (no such action) is taken at its word.
   *
   * Not for a first mapping: one more exchange there costs ~6 ms (~10 ms with the gateway
   * remembered) on miniupnpd in the lab, against a target of 5 ms (2 ms) over the floor (see the
   * README). A first grant is checked at its first renewal instead (#checkStillHeld): gone then,
   * it is added again and confirmed here, so a router that never held it is found out within a
   * third of the mapping's lifetime.
   */
  async #confirm (grant: PortMappingGrant, signal: AbortSignal): Promise<PortMappingGrant> {
    const key = { remoteHost: '', externalPort: grant.externalPort, protocol: upnpProtocol(grant.protocol) }
    let entry: PortMappingEntry | undefined
    try {
      entry = decodePortMappingEntry(await this.#soap(SoapActions.getSpecificPortMappingEntry(key), signal), 'GetSpecificPortMappingEntry')
    } catch (error) {
      if (!(error instanceof GatewayResultError)) throw error
      if (error.resultCode !== UpnpErrorCode.NoSuchEntryInArray) return grant
    }
    if (entry === undefined || entry.internalPort !== grant.internalPort || !sameAddress(entry.internalClient, this.localAddress)) {
      const holder = entry === undefined ? 'lists no such entry' : `lists it for ${entry.internalClient}:${entry.internalPort}`
      throw new MappingNotHeldError('upnp', `the gateway answered AddPortMapping for ${grant.protocol} port ${grant.externalPort} with success, ` +
        `but ${holder}: it did not add the mapping. Routers do this when their mapping table is full; ` +
        'delete unused mappings in the router\'s UPnP settings (natmapper list shows them) or restart it')
    }
    const reported = entry.leaseDuration
    // A lease clearly shorter than asked is what the gateway grants (a second less is the clock
    // ticking); 0 or a longer one says nothing (see #heldByUs).
    return reported > 0 && grant.lifetimeSeconds !== 0 && reported < grant.lifetimeSeconds - 1 ? { ...grant, lifetimeSeconds: reported } : grant
  }

  /** The gateway's whole mapping table (GetGenericPortMappingEntry from index 0 until 713), capped. */
  async listMappings (options: RequestOptions = {}): Promise<GatewayMappingEntry[]> {
    const entries: GatewayMappingEntry[] = []
    for (let index = 0; index < MAX_LISTED_MAPPINGS; index++) {
      const entry = await this.portMappingAt(index, options)
      if (entry === undefined) break
      if (entry.protocol === undefined || entry.externalPort === undefined) continue
      entries.push({
        protocol: entry.protocol === 'TCP' ? 'tcp' : 'udp',
        externalPort: entry.externalPort,
        internalClient: entry.internalClient,
        internalPort: entry.internalPort,
        description: entry.description,
        lifetimeSeconds: entry.leaseDuration,
        enabled: entry.enabled
      })
    }
    return entries
  }

  /**
   * UPnP keys a mapping by external port and protocol: anyone on the LAN may delete it (secure
   * mode permitting). Another host's entry is refused with ForeignMappingError unless `force`.
   */
  async deleteMapping (protocol: TransportProtocol, _internalPort: number, externalPort: number, options: RequestOptions & { force?: boolean } = {}): Promise<void> {
    await this.#delete(protocol, externalPort, options, options.force === true ? undefined : (entry) => {
      if (entry !== undefined && !this.#ours(entry)) throw new ForeignMappingError(protocol, externalPort, entry.internalClient, entry.internalPort, this.localAddress)
      return true
    })
  }

  /** The gateway's entry for one external port, or undefined when it has none (714). */
  async portMapping (protocol: TransportProtocol, externalPort: number, options: RequestOptions = {}): Promise<PortMappingEntry | undefined> {
    const key = { remoteHost: '', externalPort, protocol: upnpProtocol(protocol) }
    return await this.#run('GetSpecificPortMappingEntry', options, async (signal) => {
      try {
        const values = await this.#soap(SoapActions.getSpecificPortMappingEntry(key), signal)
        return { ...decodePortMappingEntry(values, 'GetSpecificPortMappingEntry'), externalPort, protocol: key.protocol }
      } catch (error) {
        if (error instanceof GatewayResultError && error.resultCode === UpnpErrorCode.NoSuchEntryInArray) return undefined
        throw error
      }
    })
  }

  /** The gateway's `index`th mapping, or undefined past the end of its table (713). */
  async portMappingAt (index: number, options: RequestOptions = {}): Promise<PortMappingEntry | undefined> {
    if (!Number.isInteger(index) || index < 0 || index > 65_535) throw new InvalidArgumentError(`index must be an integer from 0 to 65535, got ${String(index)}`)
    return await this.#run('GetGenericPortMappingEntry', options, async (signal) => {
      try {
        return decodePortMappingEntry(await this.#soap(SoapActions.getGenericPortMappingEntry(index), signal), 'GetGenericPortMappingEntry')
      } catch (error) {
        if (error instanceof GatewayResultError && error.resultCode === UpnpErrorCode.SpecifiedArrayIndexInvalid) return undefined
        throw error
      }
    })
  }

  /**
   * With several WAN services, picks one that is Connected and has a public external address,
   * else one that is Connected with any external address, else one that is Connected, else the
   * most preferred kind (the order tailscale's portmapper found to work across routers).
   */
  async selectService (options: RequestOptions = {}): Promise<WanService> {
    return await this.#run('select a WAN service', options, async (signal) => {
      const candidates: Array<{ service: WanService, connected: boolean, externalAddress?: string }> = []
      for (const service of this.#services) {
        const connected = await this.#isConnected(service, signal)
        const externalAddress = connected ? await this.#externalAddressOf(service, signal).catch(() => undefined) : undefined
        if (externalAddress !== undefined && isPubliclyRoutable(externalAddress)) return this.#use(service, externalAddress)
        candidates.push(externalAddress === undefined ? { service, connected } : { service, connected, externalAddress })
      }
      const best = candidates.find((candidate) => candidate.connected && candidate.externalAddress !== undefined) ??
        candidates.find((candidate) => candidate.connected) ??
        candidates[0]
      return best === undefined ? this.#service : this.#use(best.service, best.externalAddress)
    })
  }

  /** Stops every request in flight and refuses new ones. Idempotent; leaves no socket or timer. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#shutdown.abort(new ClosedError('upnp client closed'))
  }

  #use (service: WanService, externalAddress: string | undefined): WanService {
    this.#service = service
    this.#addAnyPortMapping = service.kind === 'WANIPConnection:2'
    this.lastExternalAddress = externalAddress
    return service
  }

  async #isConnected (service: WanService, signal: AbortSignal): Promise<boolean> {
    try {
      const status = decodeStatusInfo(await this.#soap(SoapActions.getStatusInfo(), signal, service))
      // 'Up' is what some WANPPPConnection implementations say.
      return status.connectionStatus === 'Connected' || status.connectionStatus === 'Up'
    } catch (error) {
      if (signal.aborted) throw error
      return false
    }
  }

  async #externalAddressOf (service: WanService, signal: AbortSignal): Promise<string> {
    const address = decodeExternalIPAddress(await this.#soap(SoapActions.getExternalIPAddress(), signal, service))
    if (service === this.#service) this.lastExternalAddress = address
    return address
  }

  /**
   * Creates or renews. A renewal that found the mapping gone, or one the gateway did not extend,
   * or every RECREATE_EVERY_RENEWALS-th one, deletes and adds the mapping instead: a router can
   * keep a mapping listed and renew it while it no longer forwards (Technicolor CGA4131COM,
   * tailscale #21208; miniupnpd after its chains were flushed answers from its rule cache), and
   * only a new rule brings it back. Whatever is added again is confirmed (#confirm).
   */
  async #map (request: PortMappingRequest, previous: PortMappingGrant | undefined, signal: AbortSignal): Promise<PortMappingGrant> {
    const previousIssue = previous === undefined ? undefined : this.#issued.get(previous)
    let renewal = previous !== undefined
    if (previous !== undefined) {
      const verdict = await this.#checkStillHeld(previous, signal)
      const due = (previousIssue?.renewals ?? 0) + 1 >= RECREATE_EVERY_RENEWALS
      if (verdict === 'not-extended' || (verdict === 'held' && due)) {
        debug('upnp: recreating %s port %d (%s)', previous.protocol, previous.externalPort,
          verdict === 'not-extended' ? 'the gateway did not extend its lease on renewal' : `renewal ${RECREATE_EVERY_RENEWALS}: a rule lost behind its back forwards again`)
        await this.#deleteForRecreate(previous, signal)
      }
      if (verdict !== 'held' || due) renewal = false
    }
    const grant = await this.#add(request, previous, signal)
    const confirmed = renewal || previous === undefined ? grant : await this.#confirm(grant, signal)
    // A renewal holds what the gateway granted before, unless we asked for less now.
    const leaseSeconds = renewal && previousIssue !== undefined && previousIssue.leaseSeconds !== 0 ? Math.min(previousIssue.leaseSeconds, confirmed.lifetimeSeconds) : confirmed.lifetimeSeconds
    const result = leaseSeconds === confirmed.lifetimeSeconds ? confirmed : { ...confirmed, lifetimeSeconds: leaseSeconds }
    this.#issued.set(result, { at: Date.now(), leaseSeconds, renewals: renewal ? (previousIssue?.renewals ?? 0) + 1 : 0 })
    return result
  }

  /** The delete of a delete + add: a mapping already gone, or a delete the gateway refuses, does not stop the add. */
  async #deleteForRecreate (grant: PortMappingGrant, signal: AbortSignal): Promise<void> {
    try {
      await this.#soap(SoapActions.deletePortMapping({ remoteHost: '', externalPort: grant.externalPort, protocol: upnpProtocol(grant.protocol) }), signal)
    } catch (error) {
      if (!(error instanceof GatewayResultError)) throw error
    }
  }

  /** AddPortMapping with the field quirks handled (see the README's "Router quirks handled"). */
  async #add (request: PortMappingRequest, previous: PortMappingGrant | undefined, signal: AbortSignal): Promise<PortMappingGrant> {
    const permanent = !this.#noPermanentLeases && (this.#onlyPermanentLeases || leaseKindOf(previous) === 'permanent')
    let mapping: PortMappingArguments = {
      remoteHost: '',
      // Renew the port we hold; else ask for the caller's choice, else the internal port
      // (IGDv1 gateways refuse a wildcard external port, 716).
      externalPort: previous?.externalPort ?? (request.suggestedExternalPort === 0 ? request.internalPort : request.suggestedExternalPort),
      protocol: upnpProtocol(request.protocol),
      internalPort: request.internalPort,
      internalClient: this.localAddress,
      description: request.description,
      leaseDuration: permanent ? 0 : this.#leaseFor(request.lifetimeSeconds)
    }
    const tried = new Set<number>()
    // Lease kinds this attempt asked for: a 402 is retried once with the other kind, never more
    // (a router whose table is full answers 402 to both, miniupnp #92).
    const leaseKinds = new Set<'timed' | 'permanent'>()
    let otherPorts = 0
    while (true) {
      tried.add(mapping.externalPort)
      leaseKinds.add(mapping.leaseDuration === 0 ? 'permanent' : 'timed')
      try {
        await this.#soap(SoapActions.addPortMapping(mapping), signal)
        return this.#grant(mapping, mapping.externalPort)
      } catch (error) {
        if (!(error instanceof GatewayResultError)) throw error
        if (error.resultCode === UpnpErrorCode.InvalidArgs) {
          // Routers that say 402 InvalidArgs where they mean the lease: to a timed one where
          // they grant only permanent ones (ARRIS NVG578LX, tailscale #15223), handled like 725;
          // to a permanent one where the maximum is a week (n0-computer/net-tools #52).
          if (mapping.leaseDuration !== 0 && !leaseKinds.has('permanent')) {
            this.#onlyPermanentLeases = true
            mapping = { ...mapping, leaseDuration: 0 }
            continue
          }
          if (mapping.leaseDuration === 0 && !leaseKinds.has('timed')) {
            this.#onlyPermanentLeases = false
            this.#noPermanentLeases = true
            mapping = { ...mapping, leaseDuration: Math.min(request.lifetimeSeconds === 0 ? IGD2_MAX_LEASE_SECONDS : request.lifetimeSeconds, IGD2_MAX_LEASE_SECONDS) }
            continue
          }
          throw error
        }
        if (error.resultCode === UpnpErrorCode.ConflictInMappingEntry && otherPorts === 0) {
          // Some routers answer 718 when the port is already mapped to us (same client and port),
          // instead of updating the lease: that is ours, not a conflict. Only the port we asked
          // for first (the one we hold, or the caller's) can be ours.
          const ours = await this.#heldByUs(mapping, signal)
          if (ours !== undefined) return ours
        }
        if (error.resultCode === UpnpErrorCode.OnlyPermanentLeasesSupported && mapping.leaseDuration !== 0) {
          // WANIPConnection:1 §2.4.16: the gateway grants static leases only. Ask for one and
          // remember, so the grant says 0 (permanent) and the core deletes it explicitly.
          this.#onlyPermanentLeases = true
          mapping = { ...mapping, leaseDuration: 0 }
          continue
        }
        if (error.resultCode === UpnpErrorCode.SamePortValuesRequired && !tried.has(mapping.internalPort)) {
          mapping = { ...mapping, externalPort: mapping.internalPort }
          continue
        }
        if (error.resultCode !== UpnpErrorCode.ConflictInMappingEntry && error.resultCode !== UpnpErrorCode.ConflictWithOtherMechanisms) throw error
        // Another host holds the port (718), or a static rule does (729).
        if (this.#addAnyPortMapping) {
          const granted = await this.#addAny(mapping, signal)
          if (granted !== undefined) return granted
        }
        if (otherPorts >= MAX_PORT_ATTEMPTS) throw error
        otherPorts++
        mapping = { ...mapping, externalPort: this.#untriedPort(tried) }
      }
    }
  }

  /**
   * The grant for a mapping the gateway already holds for us (our address, our internal port), or
   * undefined. Its lease: the remaining one the gateway reports, unless that is 0 or more than we
   * asked for, which some routers report whatever they hold (miniupnpd's nft backend says 0,
   * miniupnp #466; Technicolor keeps 86400, miniupnp #398): then what we asked for, so that we
   * keep renewing.
   */
  async #heldByUs (mapping: PortMappingArguments, signal: AbortSignal): Promise<PortMappingGrant | undefined> {
    let entry: PortMappingEntry
    try {
      entry = decodePortMappingEntry(await this.#soap(SoapActions.getSpecificPortMappingEntry(mapping), signal), 'GetSpecificPortMappingEntry')
    } catch (error) {
      if (error instanceof GatewayResultError) return undefined
      throw error
    }
    if (entry.internalPort !== mapping.internalPort || !sameAddress(entry.internalClient, this.localAddress)) return undefined
    const remaining = entry.leaseDuration
    const leaseDuration = remaining > 0 && (mapping.leaseDuration === 0 || remaining <= mapping.leaseDuration) ? remaining : mapping.leaseDuration
    return this.#grant({ ...mapping, leaseDuration }, mapping.externalPort)
  }

  /**
   * IGDv2 AddAnyPortMapping: the gateway picks a free port and reports it in NewReservedPort,
   * which is what the grant records. Returns undefined when the gateway turns out not to
   * implement the action, so the caller falls back to trying ports itself.
   */
  async #addAny (mapping: PortMappingArguments, signal: AbortSignal): Promise<PortMappingGrant | undefined> {
    let leaseDuration = mapping.leaseDuration
    while (true) {
      try {
        const values = await this.#soap(SoapActions.addAnyPortMapping({ ...mapping, leaseDuration }), signal)
        return this.#grant({ ...mapping, leaseDuration }, decodeReservedPort(values))
      } catch (error) {
        if (!(error instanceof GatewayResultError)) throw error
        if (error.resultCode === UpnpErrorCode.OnlyPermanentLeasesSupported && leaseDuration !== 0) {
          this.#onlyPermanentLeases = true
          leaseDuration = 0
          continue
        }
        // 401 InvalidAction, 602 OptionalActionNotImplemented: an "IGDv2" without the action.
        if (error.resultCode === 401 || error.resultCode === 602) {
          this.#addAnyPortMapping = false
          return undefined
        }
        throw error
      }
    }
  }

  #grant (mapping: PortMappingArguments, externalPort: number): PortMappingGrant {
    const state: UpnpMappingState = { leaseKind: mapping.leaseDuration === 0 ? 'permanent' : 'timed' }
    return {
      protocol: mapping.protocol === 'TCP' ? 'tcp' : 'udp',
      internalPort: mapping.internalPort,
      externalPort,
      // AddPortMapping either grants the lease asked for or fails; IGDv2 caps it at a week,
      // which #leaseFor already applied, so this is what the gateway holds.
      lifetimeSeconds: mapping.leaseDuration,
      protocolState: state
    }
  }

  /** The lease to ask for: IGDv2 gateways accept 1 s to one week (0 would mean a week too). */
  #leaseFor (seconds: number): number {
    if (this.type === 'upnp-igd2' || this.#noPermanentLeases) return seconds === 0 ? IGD2_MAX_LEASE_SECONDS : Math.min(seconds, IGD2_MAX_LEASE_SECONDS)
    return seconds
  }

  #untriedPort (tried: ReadonlySet<number>): number {
    for (let attempt = 0; attempt < 16; attempt++) {
      const port = this.#randomPort()
      if (!tried.has(port)) return port
    }
    // A random source that keeps repeating itself (tests): walk up from the last port tried.
    let port = MIN_RANDOM_EXTERNAL_PORT
    while (tried.has(port)) port++
    return port
  }

  /** Bounds a public call in time, ties it to close(), and turns a close into ClosedError. */
  async #run<T> (what: string, options: RequestOptions, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('upnp client closed')
    const linked = options.signal === undefined ? undefined : anySignal([options.signal, this.#shutdown.signal])
    const signal = linked?.signal ?? this.#shutdown.signal
    try {
      return await withDeadline(`upnp ${what}`, { signal, timeout: options.timeout ?? this.#requestTimeout }, task)
    } catch (error) {
      if (this.#closed && !(error instanceof GatewayResultError)) throw new ClosedError('upnp client closed')
      throw error
    } finally {
      linked?.release()
    }
  }

  /** One SOAP exchange, waiting for a free slot toward the gateway first. */
  async #soap (request: SoapRequest, signal: AbortSignal, service: WanService = this.#service): Promise<Map<string, string>> {
    return await this.#limiter.run(async () => await soapCall(service, request, signal, MAX_SOAP_RESPONSE_BYTES, this.#counters, { zone: this.zone }), signal)
  }
}

function checkMappingRequest (request: PortMappingRequest): void {
  if (request.protocol !== 'tcp' && request.protocol !== 'udp') throw new InvalidArgumentError(`protocol must be 'tcp' or 'udp', got ${String(request.protocol)}`)
  checkInteger(request.internalPort, 'internalPort', 0, 1, 65_535)
  checkInteger(request.suggestedExternalPort, 'suggestedExternalPort', 0, 0, 65_535)
  checkInteger(request.lifetimeSeconds, 'lifetimeSeconds', 0, 0, 4_294_967_295)
  if (typeof request.description !== 'string') throw new InvalidArgumentError('description must be a string')
  if (request.suggestedExternalAddress !== undefined && isIP(request.suggestedExternalAddress) === 0) {
    throw new InvalidArgumentError(`suggestedExternalAddress must be an IP address, got ${JSON.stringify(request.suggestedExternalAddress)}`)
  }
}

function upnpProtocol (protocol: TransportProtocol): UpnpProtocol {
  return protocol === 'tcp' ? 'TCP' : 'UDP'
}

function leaseKindOf (grant: PortMappingGrant | undefined): UpnpMappingState['leaseKind'] | undefined {
  const state = grant?.protocolState as Partial<UpnpMappingState> | undefined
  return state?.leaseKind
}

/** The uuid in a USN (`uuid:XXXX::urn:...`), lower-cased, or undefined. */
function uuidOf (usn: string | undefined): string | undefined {
  const match = /^uuid:([^:\s]{1,128})/i.exec(usn ?? '')
  return match?.[1]?.toLowerCase()
}

/** Whether an announced LOCATION is the description we read (the sender is already the gateway). */
function sameDescription (location: URL, descriptionUrl: URL): boolean {
  return location.port === descriptionUrl.port && location.pathname === descriptionUrl.pathname
}

function utf8 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}
