import type { Socket } from 'node:dgram'
import type { CountersByProtocol, GatewayClient, GatewayEvent, PortMappingGrant, PortMappingRequest, ProbeContext, RequestOptions, TransportProtocol } from '../core/gateway-client.js'
import { ClosedError, GatewayResultError, MalformedMessageError, UnsupportedError } from '../errors.js'
import { ANNOUNCEMENT_GROUP, announcementEvent, readAnnouncement } from './announcement.js'
import { randomBytes } from '../net/random.js'
import { EpochTracker } from '../net/epoch.js'
import { pcpSchedule } from '../net/retransmit.js'
import { UdpChannel, type ReplyCodec } from '../net/udp-channel.js'
import { isIPv4, isIPv4Mapped, isIPv6 } from '../net/ip-address.js'
import { NatPmpClient } from '../natpmp/client.js'
import { PCP_SERVER_PORT } from '../constants.js'
import { wireTracer } from '../core/trace.js'
import { decodeResponse, encodeAnnounceRequest, encodeMapRequest, pcpResultName, type PcpDecoded } from './codec.js'
import { nonceSource } from './nonce.js'

const RESULT_SUCCESS = 0

/** What a PCP mapping must keep across renewals: RFC 6887 §11.1 ties a mapping to its nonce. */
interface PcpMappingState {
  nonce: Uint8Array
  /** The key its replies are filed under (mapKey of the nonce), made once for the mapping's life. */
  key?: string
  /** The last request sent for it: a renewal that asks for the same again resends these bytes. */
  sent?: SentMap
}

interface SentMap {
  bytes: Uint8Array
  lifetimeSeconds: number
  suggestedExternalPort: number
  suggestedExternalAddress: string | undefined
}

type PcpResponse = Extract<PcpDecoded, { kind: 'response' }>

/**
 * RFC 6887 §11.1: a MAP reply carries its request's nonce, which is what we file it under: its 12
 * bytes as the 12 characters of a string, made in one step (every reply needs one). Other replies
 * are filed under their opcode's name, which is never 12 characters long.
 */
function mapKey (nonce: Uint8Array): string {
  return String.fromCharCode.apply(null, nonce as unknown as number[])
}

/** Every request's retransmissions follow the same RFC 6887 schedule; one factory serves them all. */
const PCP_RETRANSMIT = pcpSchedule()

/** Replies are decoded once and filed by opcode, and for MAP by nonce. */
const PCP_REPLIES: ReplyCodec<PcpDecoded> = {
  decode: decodeResponse,
  keyOf: (reply) => reply.kind !== 'response' ? undefined : reply.map === undefined ? reply.opcode : mapKey(reply.map.nonce)
}
type PcpMapResponse = PcpResponse & { map: NonNullable<PcpResponse['map']> }

/**
 * Lifetime asked for the short mapping that reveals the external address when nothing else can
 * (a PCP-only gateway, no mapping of ours): it is deleted at once, and runs out by itself if the
 * delete is lost. A server may grant more (miniupnpd's min_lifetime is 120 s by default).
 */
const ADDRESS_QUERY_LIFETIME_SECONDS = 30
/**
 * How long a first NAT-PMP address request may take before we conclude the gateway does not speak
 * NAT-PMP: a NAT-PMP server answers within milliseconds, and a PCP-only one should answer
 * UNSUPP_VERSION at once (RFC 6887 §9); this bounds the cost of one that stays silent.
 */
const NATPMP_ADDRESS_PROBE_TIMEOUT = 500

/** PCP (RFC 6887) MAP and ANNOUNCE. */
export class PcpClient implements GatewayClient {
  readonly type = 'pcp'
  readonly newsGroup = ANNOUNCEMENT_GROUP
  readonly gateway: string
  readonly localAddress: string
  onEvent: ((event: GatewayEvent) => void) | undefined
  readonly #epoch = new EpochTracker()
  /** How the channel names our requests in its errors (made once: renewals send many). */
  readonly #what: string
  readonly #channel: UdpChannel<PcpDecoded>
  /**
   * The same gateway's NAT-PMP, on a socket of its own, for the address (IPv4 gateways only).
   * Made on the first address request: most PCP clients (every discovery's probe) never ask.
   */
  #natPmp: NatPmpClient | undefined
  /** Whether the gateway answers NAT-PMP address requests; undefined until we asked. */
  #speaksNatPmp: boolean | undefined
  #closed = false
  #counters: CountersByProtocol | undefined
  /** Our mappings the gateway holds, by nonce (kept across renewals): the address each last reported, and until when. */
  readonly #held = new Map<Uint8Array, { externalAddress: string, until: number }>()

  /** Where nonces that outlive this process come from (see nonce.ts); random nonces without one. */
  readonly #cacheFile: string | undefined

  /**
   * `socket`: one already connected to the gateway's port 5351, adopted (see ProbeContext.takeSocket).
   * `cacheFile`: the cache file (ProbeContext.cacheFile), for nonces the next process can use.
   */
  constructor (gateway: string, localAddress: string, socket?: Socket, cacheFile?: string) {
    this.gateway = gateway
    this.localAddress = localAddress
    this.#cacheFile = cacheFile
    this.#what = `pcp request to ${gateway}`
    // IPv6: send from the address discovery chose (stable, global), which the request's client
    // address field names; the server answers ADDRESS_MISMATCH if the two differ (RFC 6887 §8.1).
    const bindAddress = isIPv6(localAddress) && !isIPv4Mapped(localAddress) ? localAddress : undefined
    this.#channel = new UdpChannel(gateway, PCP_SERVER_PORT, PCP_REPLIES, wireTracer('pcp', `${gateway}:${PCP_SERVER_PORT}`),
      bindAddress, bindAddress === undefined ? socket : undefined)
  }

  countInto (counters: CountersByProtocol): void {
    this.#counters = counters
    this.#channel.counters = counters.pcp
    this.#natPmp?.countInto(counters)
  }

  /** ANNOUNCE (RFC 6887 §14.1): a cheap request that any PCP server answers. */
  async announce (options: RequestOptions): Promise<PcpResponse> {
    return await this.#request(encodeAnnounceRequest({ clientAddress: this.localAddress }), 'announce',
      (response) => response.opcode === 'announce' ? response : undefined, options)
  }

  /**
   * PCP has no "get external address" opcode, and a MAP of some port as a probe is what stock
   * permission rules refuse (miniupnpd's sample config allows ports >= 1024 only; 2.3.1 then walks
   * every external port for ~1 s before refusing, answering nothing else meanwhile). So, in order:
   * the same gateway's NAT-PMP address request (miniupnpd speaks both on port 5351); else what a
   * mapping of ours last reported; else a short mapping of our own socket's port (ephemeral, so
   * >= 1024), deleted at once. No probe ever uses a port below 1024.
   */
  async externalAddress (options: RequestOptions): Promise<string> {
    const natPmp = await this.#externalAddressOverNatPmp(options)
    if (natPmp !== undefined) return natPmp
    const held = this.#latestHeldAddress()
    if (held !== undefined) return held
    const query: PortMappingRequest = {
      protocol: 'udp',
      internalPort: await this.#channel.localPort(),
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

  /** The address the newest of our mappings still in force reported; forgets those run out. */
  #latestHeldAddress (): string | undefined {
    const now = Date.now()
    let latest: string | undefined
    for (const [nonce, held] of this.#held) {
      if (held.until <= now) this.#held.delete(nonce)
      else latest = held.externalAddress
    }
    return latest
  }

  /** The address from the gateway's NAT-PMP; undefined when the gateway does not speak NAT-PMP. */
  async #externalAddressOverNatPmp (options: RequestOptions): Promise<string | undefined> {
    // NAT-PMP (RFC 6886) carries IPv4 only.
    if (!isIPv4(this.gateway) || this.#speaksNatPmp === false) return undefined
    if (this.#closed) throw new ClosedError('the client was closed')
    let natPmp = this.#natPmp
    if (natPmp === undefined) {
      natPmp = this.#natPmp = new NatPmpClient(this.gateway, this.localAddress)
      if (this.#counters !== undefined) natPmp.countInto(this.#counters)
    }
    const firstTime = this.#speaksNatPmp === undefined
    try {
      const address = await natPmp.externalAddress(firstTime
        ? { ...options, timeout: Math.min(options.timeout ?? NATPMP_ADDRESS_PROBE_TIMEOUT, NATPMP_ADDRESS_PROBE_TIMEOUT) }
        : options)
      this.#speaksNatPmp = true
      return address
    } catch (error) {
      // A gateway that answered before and fails now has given its answer; so has a caller who gave up.
      if (!firstTime || options.signal?.aborted === true || error instanceof ClosedError) throw error
      this.#speaksNatPmp = false
      // Its socket is of no more use.
      await natPmp.close()
      return undefined
    }
  }

  async map (request: PortMappingRequest, previous: PortMappingGrant | undefined, options: RequestOptions): Promise<PortMappingGrant> {
    // RFC 6887 §11.1: the nonce stays the same for the mapping's whole life.
    const state = stateOf(previous)
    const nonce = state?.nonce ?? (this.#cacheFile === undefined ? randomBytes(12) : await this.#lastingNonce(request.protocol, request.internalPort) ?? randomBytes(12))
    const key = state?.key ?? mapKey(nonce)
    // A renewal asks for what the last grant gave: the same request, already encoded.
    const last = state?.sent
    const sent: SentMap = last !== undefined && last.lifetimeSeconds === request.lifetimeSeconds &&
      last.suggestedExternalPort === request.suggestedExternalPort && last.suggestedExternalAddress === request.suggestedExternalAddress
      ? last
      : {
          bytes: this.#encodeMap(request.protocol, request.internalPort, nonce, request.lifetimeSeconds, request.suggestedExternalPort, request.suggestedExternalAddress),
          lifetimeSeconds: request.lifetimeSeconds,
          suggestedExternalPort: request.suggestedExternalPort,
          suggestedExternalAddress: request.suggestedExternalAddress
        }
    const reply = await this.#sendMap(sent.bytes, request.protocol, request.internalPort, nonce, key, request.lifetimeSeconds, options)
    // Newest last: externalAddress() reads the latest report.
    this.#held.delete(nonce)
    this.#held.set(nonce, { externalAddress: reply.map.externalAddress, until: Date.now() + reply.lifetimeSeconds * 1000 })
    return {
      protocol: request.protocol,
      internalPort: request.internalPort,
      externalPort: reply.map.externalPort,
      externalAddress: reply.map.externalAddress,
      lifetimeSeconds: reply.lifetimeSeconds,
      epochSeconds: reply.epochSeconds,
      protocolState: { nonce, key, sent } satisfies PcpMappingState
    }
  }

  /** RFC 6887 §15: a MAP with lifetime 0 and the mapping's nonce deletes it. */
  async unmap (grant: PortMappingGrant, options: RequestOptions): Promise<void> {
    const state = stateOf(grant)
    if (state === undefined) return
    this.#held.delete(state.nonce)
    await this.#sendMap(this.#encodeMap(grant.protocol, grant.internalPort, state.nonce, 0, 0, undefined), grant.protocol, grant.internalPort, state.nonce,
      state.key ?? mapKey(state.nonce), 0, options)
  }

  /**
   * Deletes a mapping made by an earlier process on this host with the same cache file: its nonce
   * is derived, not remembered (see nonce.ts). Without a cache file PCP cannot (UnsupportedError).
   */
  async deleteMapping (protocol: TransportProtocol, internalPort: number, _externalPort: number, options: RequestOptions): Promise<void> {
    const nonce = await this.#lastingNonce(protocol, internalPort)
    if (nonce === undefined) throw new UnsupportedError('pcp cannot delete a mapping made by another client without its nonce (natmapper derives it from its cache file; there is none)')
    await this.#sendMap(this.#encodeMap(protocol, internalPort, nonce, 0, 0, undefined), protocol, internalPort, nonce, mapKey(nonce), 0, options)
  }

  /** The nonce a mapping of ours gets in every process with this cache file; undefined without one. */
  async #lastingNonce (protocol: TransportProtocol, internalPort: number): Promise<Uint8Array | undefined> {
    const source = this.#cacheFile === undefined ? undefined : await nonceSource(this.#cacheFile)
    return source?.(this.gateway, this.localAddress, protocol, internalPort)
  }

  /** The gateway's last reported epoch (RFC 6887 §8.5), undefined before the first reply. */
  get epochSeconds (): number | undefined {
    return this.#epoch.epochSeconds
  }

  /**
   * RFC 6887 §14.1.3: a server multicasts an unsolicited ANNOUNCE after it lost state or changed
   * its address, and clients then renew every mapping; a NAT-PMP address announcement (RFC 6886
   * §3.2.1) from the same gateway means the same. Reported as an announcement for the NAT to check.
   */
  handleAnnouncement (bytes: Uint8Array): void {
    const announcement = readAnnouncement(bytes)
    if (announcement !== undefined) this.onEvent?.(announcementEvent(announcement, this.#epoch))
  }

  /** An ANNOUNCE: its reply's epoch shows a reset (RFC 6887 §14.1.1); any answer will do. */
  async checkGateway (options: RequestOptions): Promise<void> {
    await this.announce(options).catch((error: unknown) => { if (!(error instanceof GatewayResultError)) throw error })
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#channel.close()
    await this.#natPmp?.close()
  }

  #encodeMap (protocol: TransportProtocol, internalPort: number, nonce: Uint8Array, lifetimeSeconds: number,
    suggestedExternalPort: number, suggestedExternalAddress: string | undefined): Uint8Array {
    return encodeMapRequest({
      clientAddress: this.localAddress,
      lifetimeSeconds,
      nonce,
      protocol,
      internalPort,
      suggestedExternalPort,
      ...(suggestedExternalAddress === undefined ? {} : { suggestedExternalAddress })
    })
  }

  async #sendMap (request: Uint8Array, protocol: TransportProtocol, internalPort: number, nonce: Uint8Array, key: string, lifetimeSeconds: number,
    options: RequestOptions): Promise<PcpMapResponse> {
    // A reply for another mapping, or an old one with another nonce, is not ours: keep waiting.
    const reply = await this.#request(request, key, (response): PcpMapResponse | undefined => {
      const map = response.map
      if (response.opcode !== 'map' || map === undefined) return undefined
      if (map.protocol !== protocol || map.internalPort !== internalPort || !sameBytes(map.nonce, nonce)) return undefined
      return response as PcpMapResponse
    }, options)
    // A success that grants nothing is a lie we must not record as a mapping (a delete excepted).
    if (lifetimeSeconds > 0 && (reply.map.externalPort === 0 || reply.lifetimeSeconds === 0)) {
      throw new MalformedMessageError('pcp', `success reply granting port ${reply.map.externalPort} for ${reply.lifetimeSeconds} s`)
    }
    return reply
  }

  async #request<R extends PcpResponse> (request: Uint8Array, key: string, match: (response: PcpResponse) => R | undefined, options: RequestOptions): Promise<R> {
    const reply = await this.#channel.exchange(this.#what, {
      request,
      retransmit: PCP_RETRANSMIT,
      key,
      accept: (decoded) => {
        if (decoded.kind === 'version-mismatch') {
          throw new UnsupportedError(`${this.gateway} does not speak PCP version 2 (it answered as version ${decoded.serverVersion})`)
        }
        return match(decoded)
      }
    }, options)
    this.#counters?.pcp.answered(reply.resultCode, pcpResultName(reply.resultCode))
    if (this.#epoch.observe(reply.epochSeconds)) this.onEvent?.({ kind: 'reset', reason: `PCP epoch is now ${reply.epochSeconds} s` })
    if (reply.resultCode !== RESULT_SUCCESS) throw new GatewayResultError('pcp', reply.resultCode, pcpResultName(reply.resultCode))
    return reply
  }
}

function stateOf (grant: PortMappingGrant | undefined): PcpMappingState | undefined {
  const state = grant?.protocolState as Partial<PcpMappingState> | undefined
  if (!(state?.nonce instanceof Uint8Array)) return undefined
  return state as PcpMappingState
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  // A plain loop: this runs for every reply, and every() costs a call per byte.
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Probes with ANNOUNCE. Any PCP version 2 reply proves the gateway speaks PCP, even a failure
 * result; a NAT-PMP-formatted UNSUPP_VERSION reply (RFC 6887 §9) rejects so that discovery falls
 * back to NAT-PMP.
 */
export async function pcpProbe (context: ProbeContext): Promise<GatewayClient> {
  const client = new PcpClient(context.gateway, context.localAddress, context.takeSocket?.(), context.cacheFile)
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
