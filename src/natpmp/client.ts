import type { Socket } from 'node:dgram'
import type { CountersByProtocol, GatewayClient, GatewayEvent, PortMappingGrant, PortMappingRequest, ProbeContext, RequestOptions, TransportProtocol } from '../core/gateway-client.js'
import { GatewayResultError, MalformedMessageError, UnsupportedError } from '../errors.js'
import { ANNOUNCEMENT_GROUP, announcementEvent, readAnnouncement } from '../pcp/announcement.js'
import { EpochTracker } from '../net/epoch.js'
import { natPmpSchedule } from '../net/retransmit.js'
import { UdpChannel, type ReplyCodec } from '../net/udp-channel.js'
import type { ExchangeCounters } from '../net/counters.js'
import { PCP_SERVER_PORT } from '../constants.js'
import { wireTracer } from '../core/trace.js'
import { PCP_VERSION } from '../pcp/codec.js'
import {
  decodeResponse,
  encodeExternalAddressRequest,
  encodeMapRequest,
  natPmpResultName,
  type NatPmpMapResponse,
  type NatPmpResponse
} from './codec.js'

const RESULT_SUCCESS = 0
const RESULT_UNSUPP_VERSION = 1
const RESULT_NETWORK_FAILURE = 3
const UNSPECIFIED_ADDRESS = '0.0.0.0'

/** RFC 6886 §3.3: replies are told apart by opcode, and map replies by protocol and internal port. */
const mapKey = (protocol: 'tcp' | 'udp', internalPort: number): string => `${protocol} ${internalPort}`
const ADDRESS_KEY = 'address'

/** Replies are decoded once and filed by what tells them apart (a truncated map error is offered to every map). */
function natPmpReplies (gateway: string): ReplyCodec<NatPmpResponse> {
  return {
    decode: (bytes) => {
      // RFC 6887 §9: a PCP-only server may refuse a version-0 request in its own (version 2) format.
      if (bytes[0] === PCP_VERSION && bytes.length >= 4 && bytes[3] === RESULT_UNSUPP_VERSION) {
        throw new UnsupportedError(`${gateway} speaks PCP but not NAT-PMP`)
      }
      return decodeResponse(bytes)
    },
    keyOf: (reply) => reply.opcode === 'external-address' ? ADDRESS_KEY : reply.truncated ? undefined : mapKey(reply.protocol, reply.internalPort)
  }
}

/** NAT-PMP (RFC 6886). Replies are told apart by opcode and internal port (RFC 6886 §3.3). */
export class NatPmpClient implements GatewayClient {
  readonly type = 'nat-pmp'
  readonly newsGroup = ANNOUNCEMENT_GROUP
  readonly gateway: string
  readonly localAddress: string
  onEvent: ((event: GatewayEvent) => void) | undefined
  readonly #epoch = new EpochTracker()
  readonly #channel: UdpChannel<NatPmpResponse>
  #counters: ExchangeCounters | undefined
  /** The external address from the last successful address request (the probe makes one). */
  lastExternalAddress: string | undefined

  /** `socket`: one already connected to the gateway's port 5351, adopted (see ProbeContext.takeSocket). */
  constructor (gateway: string, localAddress: string, socket?: Socket) {
    this.gateway = gateway
    this.localAddress = localAddress
    this.#channel = new UdpChannel(gateway, PCP_SERVER_PORT, natPmpReplies(gateway), wireTracer('nat-pmp', `${gateway}:${PCP_SERVER_PORT}`), undefined, socket)
  }

  countInto (counters: CountersByProtocol): void {
    this.#counters = counters['nat-pmp']
    this.#channel.counters = counters['nat-pmp']
  }

  async externalAddress (options: RequestOptions): Promise<string> {
    let reply
    try {
      reply = await this.#request(encodeExternalAddressRequest(), ADDRESS_KEY, (response) =>
        response.opcode === 'external-address' ? response : undefined, options)
    } catch (error) {
      // RFC 6886 §3.5: NETWORK_FAILURE means the gateway has no usable external address (no
      // DHCP lease yet, or, on miniupnpd, one that is private or shared). That is an answer,
      // "unspecified", which the NAT reports as not publicly routable.
      if (error instanceof GatewayResultError && error.resultCode === RESULT_NETWORK_FAILURE) return UNSPECIFIED_ADDRESS
      throw error
    }
    if (reply.truncated || reply.externalAddress === undefined) throw new GatewayResultError('nat-pmp', reply.resultCode, natPmpResultName(reply.resultCode), 'no external address in reply')
    this.lastExternalAddress = reply.externalAddress
    return reply.externalAddress
  }

  async map (request: PortMappingRequest, _previous: PortMappingGrant | undefined, options: RequestOptions): Promise<PortMappingGrant> {
    const reply = await this.#requestMap(request.protocol, request.internalPort, request.suggestedExternalPort, request.lifetimeSeconds, options)
    return {
      protocol: request.protocol,
      internalPort: request.internalPort,
      externalPort: reply.externalPort,
      lifetimeSeconds: reply.lifetimeSeconds,
      epochSeconds: reply.epochSeconds
    }
  }

  /** RFC 6886 §3.4: a delete is a map request with lifetime 0 and suggested external port 0. */
  async unmap (grant: PortMappingGrant, options: RequestOptions): Promise<void> {
    await this.#requestMap(grant.protocol, grant.internalPort, 0, 0, options)
  }

  /** NAT-PMP identifies a mapping by protocol and internal port alone, so anyone on this host may delete it. */
  async deleteMapping (protocol: TransportProtocol, internalPort: number, _externalPort: number, options: RequestOptions): Promise<void> {
    await this.#requestMap(protocol, internalPort, 0, 0, options)
  }

  /** The gateway's last reported epoch (RFC 6886 §3.6), undefined before the first reply. */
  get epochSeconds (): number | undefined {
    return this.#epoch.epochSeconds
  }

  /**
   * RFC 6886 §3.2.1: after a boot, a restart or an address change the gateway multicasts its
   * address, meaning mappings may be lost; a PCP server says the same with ANNOUNCE. Reported as an
   * announcement for the NAT to check: the address in it is not taken, the gateway is asked.
   */
  handleAnnouncement (bytes: Uint8Array): void {
    const announcement = readAnnouncement(bytes)
    if (announcement !== undefined) this.onEvent?.(announcementEvent(announcement, this.#epoch))
  }

  /**
   * An address request: its reply carries the epoch and the address. No address (NETWORK_FAILURE)
   * is no news here: a gateway announces as its WAN address goes and again as the new one comes
   * (miniupnpd: RTM_DELADDR, then RTM_NEWADDR), and the check after the first would otherwise
   * report a moment without one; the regular address check reports it if it lasts.
   */
  async checkGateway (options: RequestOptions): Promise<void> {
    const address = await this.externalAddress(options)
    if (address !== UNSPECIFIED_ADDRESS) this.onEvent?.({ kind: 'external-address', address })
  }

  #observeEpoch (epochSeconds: number): void {
    if (this.#epoch.observe(epochSeconds)) this.onEvent?.({ kind: 'reset', reason: `NAT-PMP epoch is now ${epochSeconds} s` })
  }

  async close (): Promise<void> {
    this.#channel.close()
  }

  async #requestMap (protocol: 'tcp' | 'udp', internalPort: number, suggestedExternalPort: number, lifetimeSeconds: number, options: RequestOptions): Promise<NatPmpMapResponse> {
    const request = encodeMapRequest({ protocol, internalPort, suggestedExternalPort, lifetimeSeconds })
    const reply = await this.#request(request, mapKey(protocol, internalPort), (response) =>
      // A truncated error reply has no internal port to match; its opcode and protocol must do.
      response.opcode === 'map' && response.protocol === protocol && (response.truncated || response.internalPort === internalPort) ? response : undefined, options)
    if (reply.truncated) throw resultError(reply.resultCode)
    // A success that grants nothing is a lie we must not record as a mapping (a delete excepted).
    if (lifetimeSeconds > 0 && (reply.externalPort === 0 || reply.lifetimeSeconds === 0)) {
      throw new MalformedMessageError('nat-pmp', `success reply granting port ${reply.externalPort} for ${reply.lifetimeSeconds} s`)
    }
    return reply
  }

  /** Sends, waits for the matching reply, records the epoch, turns a failure code into an error. */
  async #request<R extends NatPmpResponse> (request: Uint8Array, key: string, match: (response: NatPmpResponse) => R | undefined, options: RequestOptions): Promise<R> {
    const reply = await this.#channel.exchange(`nat-pmp request to ${this.gateway}`, {
      request,
      retransmit: natPmpSchedule,
      key,
      accept: match
    }, options)
    this.#counters?.answered(reply.resultCode, natPmpResultName(reply.resultCode))
    if (reply.epochSeconds !== undefined) this.#observeEpoch(reply.epochSeconds)
    if (reply.resultCode === RESULT_UNSUPP_VERSION) throw new UnsupportedError(`${this.gateway} does not speak NAT-PMP version 0`, { cause: resultError(reply.resultCode) })
    if (reply.resultCode !== RESULT_SUCCESS) throw resultError(reply.resultCode)
    return reply
  }
}

function resultError (code: number): GatewayResultError {
  return new GatewayResultError('nat-pmp', code, natPmpResultName(code))
}

/**
 * Probes with an external-address request. Any well-formed NAT-PMP answer proves the gateway
 * speaks the protocol, even a failure such as NETWORK_FAILURE (no WAN address yet); only
 * UNSUPP_VERSION (a PCP-only server, RFC 6887 §9) means it does not.
 */
export async function natPmpProbe (context: ProbeContext): Promise<GatewayClient> {
  const client = new NatPmpClient(context.gateway, context.localAddress, context.takeSocket?.())
  try {
    await client.externalAddress({ signal: context.signal, timeout: Infinity })
  } catch (error) {
    if (!(error instanceof GatewayResultError)) {
      // A probe that failed (silence, refusal, abort) must not keep its socket (found by the soak).
      await client.close()
      throw error
    }
  }
  return client
}
