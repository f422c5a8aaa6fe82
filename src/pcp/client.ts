import type { GatewayClient, GatewayEvent, PortMappingGrant, PortMappingRequest, ProbeContext, RequestOptions, TransportProtocol } from '../core/gateway-client.js'
import { GatewayResultError, MalformedMessageError, UnsupportedError } from '../errors.js'
import { readAnnouncement } from '../net/announcements.js'
import { randomBytes } from '../net/random.js'
import { EpochTracker } from '../net/epoch.js'
import { pcpSchedule } from '../net/retransmit.js'
import { UdpChannel } from '../net/udp-channel.js'
import { isIPv4Mapped, isIPv6 } from '../net/ip-address.js'
import { PCP_SERVER_PORT } from '../constants.js'
import { wireTracer } from '../core/trace.js'
import { decodeResponse, encodeAnnounceRequest, encodeMapRequest, pcpResultName, type PcpDecoded } from './codec.js'

const RESULT_SUCCESS = 0

/** What a PCP mapping must keep across renewals: RFC 6887 §11.1 ties a mapping to its nonce. */
interface PcpMappingState {
  nonce: Uint8Array
}

type PcpResponse = Extract<PcpDecoded, { kind: 'response' }>
type PcpMapResponse = PcpResponse & { map: NonNullable<PcpResponse['map']> }

/**
 * Port used for the short-lived mapping that reveals the external address when no mapping of ours
 * exists: PCP has no "get external address" opcode. 9 is the discard service, which nothing of
 * ours maps.
 */
const ADDRESS_QUERY_PORT = 9
const ADDRESS_QUERY_LIFETIME_SECONDS = 30

/** PCP (RFC 6887) MAP and ANNOUNCE. */
export class PcpClient implements GatewayClient {
  readonly type = 'pcp'
  readonly gateway: string
  readonly localAddress: string
  onEvent: ((event: GatewayEvent) => void) | undefined
  readonly #epoch = new EpochTracker()
  readonly #channel: UdpChannel

  constructor (gateway: string, localAddress: string) {
    this.gateway = gateway
    this.localAddress = localAddress
    // IPv6: send from the address discovery chose (stable, global), which the request's client
    // address field names; the server answers ADDRESS_MISMATCH if the two differ (RFC 6887 §8.1).
    this.#channel = new UdpChannel(gateway, PCP_SERVER_PORT, wireTracer('pcp', `${gateway}:${PCP_SERVER_PORT}`),
      isIPv6(localAddress) && !isIPv4Mapped(localAddress) ? localAddress : undefined)
  }

  /** ANNOUNCE (RFC 6887 §14.1): a cheap request that any PCP server answers. */
  async announce (options: RequestOptions): Promise<PcpResponse> {
    return await this.#request(encodeAnnounceRequest({ clientAddress: this.localAddress }),
      (response) => response.opcode === 'announce' ? response : undefined, options)
  }

  async externalAddress (options: RequestOptions): Promise<string> {
    const query: PortMappingRequest = {
      protocol: 'udp',
      internalPort: ADDRESS_QUERY_PORT,
      suggestedExternalPort: 0,
      lifetimeSeconds: ADDRESS_QUERY_LIFETIME_SECONDS,
      description: 'natmapper address query'
    }
    const grant = await this.map(query, undefined, options)
    // Best effort: the lease is short and runs out by itself if the delete is lost.
    await this.unmap(grant, options).catch(() => {})
    if (grant.externalAddress === undefined) throw new MalformedMessageError('pcp', 'MAP reply without an external address')
    return grant.externalAddress
  }

  async map (request: PortMappingRequest, previous: PortMappingGrant | undefined, options: RequestOptions): Promise<PortMappingGrant> {
    // RFC 6887 §11.1: the nonce stays the same for the mapping's whole life.
    const nonce = stateOf(previous)?.nonce ?? randomBytes(12)
    const reply = await this.#requestMap(request.protocol, request.internalPort, nonce, request.lifetimeSeconds,
      request.suggestedExternalPort, request.suggestedExternalAddress, options)
    return {
      protocol: request.protocol,
      internalPort: request.internalPort,
      externalPort: reply.map.externalPort,
      externalAddress: reply.map.externalAddress,
      lifetimeSeconds: reply.lifetimeSeconds,
      epochSeconds: reply.epochSeconds,
      protocolState: { nonce } satisfies PcpMappingState
    }
  }

  /** RFC 6887 §15: a MAP with lifetime 0 and the mapping's nonce deletes it. */
  async unmap (grant: PortMappingGrant, options: RequestOptions): Promise<void> {
    const state = stateOf(grant)
    if (state === undefined) return
    await this.#requestMap(grant.protocol, grant.internalPort, state.nonce, 0, 0, undefined, options)
  }

  /** The gateway's last reported epoch (RFC 6887 §8.5), undefined before the first reply. */
  get epochSeconds (): number | undefined {
    return this.#epoch.epochSeconds
  }

  /**
   * RFC 6887 §14.1.3: a server multicasts an unsolicited ANNOUNCE after it lost state or changed
   * its address, and clients then renew every mapping; a NAT-PMP address announcement (RFC 6886
   * §3.2.1) from the same gateway means the same. We renew whatever the epoch says.
   */
  handleAnnouncement (bytes: Uint8Array): void {
    const announcement = readAnnouncement(bytes)
    if (announcement === undefined) return
    if (announcement.protocol === 'pcp') this.#epoch.observe(announcement.epochSeconds)
    this.onEvent?.({ kind: 'reset', reason: `${announcement.protocol === 'pcp' ? 'PCP ANNOUNCE' : 'NAT-PMP address announcement'} from the gateway (epoch ${announcement.epochSeconds} s)` })
  }

  async close (): Promise<void> {
    this.#channel.close()
  }

  async #requestMap (protocol: TransportProtocol, internalPort: number, nonce: Uint8Array, lifetimeSeconds: number,
    suggestedExternalPort: number, suggestedExternalAddress: string | undefined, options: RequestOptions): Promise<PcpMapResponse> {
    const request = encodeMapRequest({
      clientAddress: this.localAddress,
      lifetimeSeconds,
      nonce,
      protocol,
      internalPort,
      suggestedExternalPort,
      ...(suggestedExternalAddress === undefined ? {} : { suggestedExternalAddress })
    })
    // A reply for another mapping, or an old one with another nonce, is not ours: keep waiting.
    const reply = await this.#request(request, (response) => {
      const map = response.map
      if (response.opcode !== 'map' || map === undefined) return undefined
      if (map.protocol !== protocol || map.internalPort !== internalPort || !sameBytes(map.nonce, nonce)) return undefined
      return { ...response, map }
    }, options)
    // A success that grants nothing is a lie we must not record as a mapping (a delete excepted).
    if (lifetimeSeconds > 0 && (reply.map.externalPort === 0 || reply.lifetimeSeconds === 0)) {
      throw new MalformedMessageError('pcp', `success reply granting port ${reply.map.externalPort} for ${reply.lifetimeSeconds} s`)
    }
    return reply
  }

  async #request<R extends PcpResponse> (request: Uint8Array, match: (response: PcpResponse) => R | undefined, options: RequestOptions): Promise<R> {
    const reply = await this.#channel.exchange(`pcp request to ${this.gateway}`, {
      request,
      retransmit: pcpSchedule(),
      accept: (bytes) => {
        const decoded = decodeResponse(bytes)
        if (decoded.kind === 'version-mismatch') {
          throw new UnsupportedError(`${this.gateway} does not speak PCP version 2 (it answered as version ${decoded.serverVersion})`)
        }
        return match(decoded)
      }
    }, options)
    if (this.#epoch.observe(reply.epochSeconds)) this.onEvent?.({ kind: 'reset', reason: `PCP epoch is now ${reply.epochSeconds} s` })
    if (reply.resultCode !== RESULT_SUCCESS) throw new GatewayResultError('pcp', reply.resultCode, pcpResultName(reply.resultCode))
    return reply
  }
}

function stateOf (grant: PortMappingGrant | undefined): PcpMappingState | undefined {
  const state = grant?.protocolState as Partial<PcpMappingState> | undefined
  return state?.nonce instanceof Uint8Array ? { nonce: state.nonce } : undefined
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}

/**
 * Probes with ANNOUNCE. Any PCP version 2 reply proves the gateway speaks PCP, even a failure
 * result; a NAT-PMP-formatted UNSUPP_VERSION reply (RFC 6887 §9) rejects so that discovery falls
 * back to NAT-PMP.
 */
export async function pcpProbe (context: ProbeContext): Promise<GatewayClient> {
  const client = new PcpClient(context.gateway, context.localAddress)
  try {
    await client.announce({ signal: context.signal, timeout: Infinity })
  } catch (error) {
    if (!(error instanceof GatewayResultError)) {
      // A probe that failed (silence, refusal, abort) must not keep its socket (found by the soak).
      await client.close()
      throw error
    }
  }
  return client
}
