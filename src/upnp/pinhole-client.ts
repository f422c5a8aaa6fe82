import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import { anySignal, withDeadline } from '../core/deadline.js'
import { allowManyListeners } from '../core/limiter.js'
import type { CountersByProtocol, GatewayClient, GatewayEvent, PortMappingGrant, PortMappingRequest, RequestOptions } from '../core/gateway-client.js'
import { ClosedError, GatewayResultError } from '../errors.js'
import type { ExchangeCounters } from '../net/counters.js'
import { isIPv6 } from '../net/ip-address.js'
import { soapCall, type SoapService } from './soap-call.js'
import { hostOf } from './trust.js'
import {
  decodeFirewallStatus,
  decodePinholeId,
  SoapActions,
  UpnpErrorCode,
  type FirewallStatus,
  type SoapRequest
} from './soap.js'

/** What a pinhole keeps across renewals: the gateway's UniqueID (WANIPv6FirewallControl:1 §2.5.4). */
interface PinholeState {
  /** Undefined when the firewall is off and no pinhole was needed. */
  uniqueId: number | undefined
  /** The client's count of resets seen when the gateway gave this UniqueID. */
  resetsSeen: number
}

/** WANIPv6FirewallControl:1 §2.3.x: LeaseTime is 1 to 86 400 seconds. */
const MIN_LEASE_SECONDS = 1
const MAX_LEASE_SECONDS = 86_400
const MAX_SOAP_RESPONSE_BYTES = 64 * 1024

export interface UpnpPinholeClientInit {
  /** The gateway's address as we talk to it (IPv6). */
  gateway: string
  /**
   * Our global IPv6 address: the pinhole's InternalClient, its "external" address, and the address
   * every request leaves from, so that secure-mode routers (miniupnpd) see the request come from
   * the InternalClient and do not answer 606. Left to itself, the kernel would pick a temporary
   * (RFC 8981) address, preferred for outgoing connections on desktops, or a ULA one.
   */
  localAddress: string
  /** The interface a link-local control URL is on (the gateway's zone). */
  zone?: string | undefined
  /** WANIPv6FirewallControl's control URL, reached over IPv6. */
  controlUrl: URL
  serviceType: string
  requestTimeout?: number
}

/**
 * Inbound IPv6 pinholes through an IGDv2's WANIPv6FirewallControl service. There is no
 * translation: the grant's external address and port are our own.
 *
 * A pinhole is created and renewed with AddPinhole (any remote host and port): for a pinhole that
 * exists with the same values, miniupnpd updates its lease and answers its UniqueID (2.0 and
 * later, upnp_add_inboundpinhole). Renewing with UpdatePinhole on the UniqueID would trust a
 * number the gateway reuses: after a restart miniupnpd numbers pinholes from 1 again (or re-adds
 * them from its lease file in another order), so an old ID can name another of our pinholes, and
 * renewing it keeps that one alive while ours never comes back (found by the serve lab test). For
 * the same reason DeletePinhole is sent to the ID an AddPinhole has just answered, not a kept one.
 */
export class UpnpPinholeClient implements GatewayClient {
  readonly type = 'upnp-igd2'
  readonly gateway: string
  readonly localAddress: string
  onEvent: ((event: GatewayEvent) => void) | undefined
  readonly #service: SoapService
  readonly #zone: string | undefined
  #counters: ExchangeCounters | undefined
  readonly #requestTimeout: number
  /**
   * Aborts every request in flight on close(). Each request listens to it while it waits, so a
   * burst (a gateway reset renewing every mapping at once) puts many listeners on it; that is not
   * a leak (found by the soak: MaxListenersExceededWarning with 13 mappings moving at once).
   */
  readonly #shutdown = new AbortController()
  #status: FirewallStatus | undefined
  #closed = false
  /** Resets reported: a pinhole whose ID changed under an older count was part of a reset already reported. */
  #resetsSeen = 0

  constructor (init: UpnpPinholeClientInit) {
    allowManyListeners(this.#shutdown.signal)
    this.gateway = init.gateway
    this.localAddress = init.localAddress
    this.#service = { controlUrl: init.controlUrl, serviceType: init.serviceType }
    this.#zone = init.zone
    this.#requestTimeout = init.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT
  }

  countInto (counters: CountersByProtocol): void {
    this.#counters = counters.upnp
  }

  /** GetFirewallStatus, asked once. */
  async firewallStatus (options: RequestOptions = {}): Promise<FirewallStatus> {
    if (this.#status !== undefined) return this.#status
    const status = await this.#run('GetFirewallStatus', options, async (signal) => decodeFirewallStatus(await this.#soap(SoapActions.getFirewallStatus(), signal)))
    this.#status = status
    return status
  }

  /** No translation on IPv6: our own address is the one peers reach. */
  async externalAddress (): Promise<string> {
    return this.localAddress
  }

  async map (request: PortMappingRequest, previous: PortMappingGrant | undefined, options: RequestOptions = {}): Promise<PortMappingGrant> {
    const status = await this.firewallStatus(options)
    const leaseTime = Math.min(MAX_LEASE_SECONDS, Math.max(MIN_LEASE_SECONDS, Math.round(request.lifetimeSeconds)))
    const grant = (uniqueId: number | undefined): PortMappingGrant => ({
      protocol: request.protocol,
      internalPort: request.internalPort,
      externalPort: request.internalPort,
      externalAddress: this.localAddress,
      lifetimeSeconds: leaseTime,
      protocolState: { uniqueId, resetsSeen: this.#resetsSeen } satisfies PinholeState
    })
    // Firewall off: every inbound connection already passes; nothing to open or renew.
    if (!status.firewallEnabled) return grant(undefined)
    if (!status.inboundPinholeAllowed) {
      // A Fritz!Box says 0 until the IPv6 side of its per-device sharing is on (miniupnp #392).
      throw new GatewayResultError('upnp', UpnpErrorCode.InboundPinholeNotAllowed, 'InboundPinholeNotAllowed',
        'GetFirewallStatus says the gateway allows no inbound pinholes (InboundPinholeAllowed 0): turn on IPv6 port sharing for this device in the router ' +
        '(on a Fritz!Box, "Permit independent port sharing" and the IPv6 option under Internet > Permit Access)')
    }
    return await this.#run('AddPinhole', options, async (signal) => {
      const uniqueId = await this.#addPinhole(request, leaseTime, signal)
      const held = stateOf(previous)
      if (held?.uniqueId !== undefined && held.uniqueId !== uniqueId && held.resetsSeen === this.#resetsSeen) {
        // A new ID for a pinhole we held: the gateway lost it (a restart). The others are likely
        // gone too; renewing them now brings them back before their turn.
        this.#resetsSeen++
        this.onEvent?.({ kind: 'reset', reason: `the gateway answered a renewed pinhole with UniqueID ${uniqueId}, not ${held.uniqueId}: it lost its pinholes` })
      }
      return grant(uniqueId)
    })
  }

  async unmap (grant: PortMappingGrant, options: RequestOptions = {}): Promise<void> {
    if (stateOf(grant)?.uniqueId === undefined) return
    await this.#run('DeletePinhole', options, async (signal) => {
      // The ID the pinhole has now (see the class comment); adding it again for a second is harmless.
      const uniqueId = await this.#addPinhole(grant, MIN_LEASE_SECONDS, signal)
      try {
        await this.#soap(SoapActions.deletePinhole(uniqueId), signal)
      } catch (error) {
        // Already gone is what we wanted.
        if (!(error instanceof GatewayResultError && error.resultCode === UpnpErrorCode.NoSuchEntry)) throw error
      }
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#shutdown.abort(new ClosedError('upnp pinhole client closed'))
  }

  async #addPinhole (request: Pick<PortMappingRequest, 'protocol' | 'internalPort'>, leaseTime: number, signal: AbortSignal): Promise<number> {
    return decodePinholeId(await this.#soap(SoapActions.addPinhole({
      internalClient: this.localAddress,
      internalPort: request.internalPort,
      protocol: request.protocol === 'tcp' ? 'TCP' : 'UDP',
      leaseTime
    }), signal))
  }

  async #run<T> (what: string, options: RequestOptions, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('upnp pinhole client closed')
    const linked = options.signal === undefined ? undefined : anySignal([options.signal, this.#shutdown.signal])
    try {
      return await withDeadline(`upnp ${what}`, { signal: linked?.signal ?? this.#shutdown.signal, timeout: options.timeout ?? this.#requestTimeout }, task)
    } finally {
      linked?.release()
    }
  }

  async #soap (request: SoapRequest, signal: AbortSignal): Promise<Map<string, string>> {
    return await soapCall(this.#service, request, signal, MAX_SOAP_RESPONSE_BYTES, this.#counters, {
      zone: this.#zone,
      // Over IPv6 only: a control URL reached over IPv4 cannot leave from our IPv6 address.
      localAddress: isIPv6(hostOf(this.#service.controlUrl)) ? this.localAddress : undefined
    })
  }
}

function stateOf (grant: PortMappingGrant | undefined): PinholeState | undefined {
  const state = grant?.protocolState as Partial<PinholeState> | undefined
  if (state === undefined || !('uniqueId' in state)) return undefined
  return { uniqueId: typeof state.uniqueId === 'number' ? state.uniqueId : undefined, resetsSeen: typeof state.resetsSeen === 'number' ? state.resetsSeen : -1 }
}
