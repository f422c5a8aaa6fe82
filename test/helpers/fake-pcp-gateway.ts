/**
 * An in-process NAT gateway for client tests: it binds UDP port 5351 on a loopback address and
 * speaks PCP (RFC 6887) and NAT-PMP (RFC 6886) through the codecs' server side, keeps a mapping
 * table and an epoch, and misbehaves on demand.
 *
 * Each test file uses its own address in 127.0.0.2-127.0.0.254 so files can run in parallel: the
 * port is fixed because clients always talk to port 5351. It only ever answers loopback sources.
 *
 * @example
 * const gateway = await FakePcpGateway.start({ address: '127.0.0.2', externalAddress: '11.77.0.1' })
 * gateway.behaviour = { dropFirst: 1 } // the first request is lost: the client must retransmit
 * // ... run the client against 127.0.0.2 ...
 * assert.equal(gateway.mappings.get('udp/4000')?.externalPort, 4000)
 * await gateway.close()
 */

import dgram from 'node:dgram'
import type { RemoteInfo } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import { PCP_SERVER_PORT } from '../../src/constants.js'
import type { TransportProtocol } from '../../src/core/gateway-client.js'
import { InvalidArgumentError, MalformedMessageError } from '../../src/errors.js'
import {
  decodeRequest as decodeNatPmpRequest,
  encodeResponse as encodeNatPmpResponse,
  encodeUnsupportedVersionResponse,
  NATPMP_RESULT_CODES,
  NATPMP_VERSION
} from '../../src/natpmp/codec.js'
import type { NatPmpRequest, NatPmpResponse } from '../../src/natpmp/codec.js'
import { addressScope, sameAddress } from '../../src/net/ip-address.js'
import {
  decodeRequest as decodePcpRequest,
  encodeResponse as encodePcpResponse,
  PCP_HEADER_SIZE,
  PCP_NONCE_SIZE,
  PCP_RESULT_CODES,
  PCP_VERSION
} from '../../src/pcp/codec.js'
import type { PcpMapRequest, PcpRequest } from '../../src/pcp/codec.js'

export interface FakePcpGatewayOptions {
  /** Loopback address to bind port 5351 on, e.g. '127.0.0.2'. */
  address: string
  /** The WAN address the gateway reports. '0.0.0.0' means it has none yet: it answers NETWORK_FAILURE. */
  externalAddress: string
  /** Speaks PCP. Default true; when false, PCP requests get NAT-PMP's UNSUPP_VERSION. */
  pcp?: boolean
  /** Speaks NAT-PMP. Default true; when false, NAT-PMP requests get UNSUPP_VERSION (RFC 6887 §9). */
  natPmp?: boolean
  /** Epoch at start, in seconds; it then counts up with the clock. Default 0. */
  epochSeconds?: number
}

/**
 * Scripted misbehaviour, read on every request, so it can change at any time during a test.
 * Assigning a new object to `gateway.behaviour` restarts the `dropFirst` count.
 */
export interface FakeGatewayBehaviour {
  /** Receive and log requests but never answer, like a gateway that has stopped. */
  silent?: boolean
  /** Wait this many milliseconds before answering. */
  delayMs?: number
  /** Send each reply this many extra times. */
  duplicates?: number
  /**
   * Before each real reply, send one the client must ignore: for PCP a MAP reply with a wrong
   * nonce, for NAT-PMP a reply with the wrong opcode.
   */
  staleReplyFirst?: boolean
  /** Send replies from a second socket on another port: clients must ignore them. */
  replyFromOtherPort?: boolean
  /** Answer MAP requests with this result code (NAT-PMP or PCP numbering) and change nothing. */
  resultCode?: number
  /** The lifetime to grant for a requested one, in seconds. Default: as requested. */
  grantLifetime?: (requestedSeconds: number) => number
  /** The external port for a new mapping. Default: the suggested port if free, else the internal, else a free one. */
  grantExternalPort?: (suggestedPort: number, internalPort: number) => number
  /** Drop the first N requests unseen, as if lost on the way (for retransmission tests). */
  dropFirst?: number
  /** Answer PCP requests with NAT-PMP's UNSUPP_VERSION even though `pcp` is on. */
  unsupportedVersionForPcp?: boolean
  /**
   * A renewal leaves the first lease's expiry in place and reports what is left of it (Tomato's
   * miniupnpd; miniupnp issues 131 and 199): only a delete and a new map give a new lease.
   */
  renewalKeepsExpiry?: boolean
}

/** What happened to a request. */
export type FakeGatewayOutcome =
  /** Answered normally (possibly with an error result code). */
  | 'answered'
  /** Answered UNSUPP_VERSION in NAT-PMP format. */
  | 'refused-version'
  /** Dropped by `behaviour.dropFirst`. */
  | 'dropped'
  /** Not answered because of `behaviour.silent`. */
  | 'silent'
  /** Not answered: malformed, PEER, or no protocol enabled to refuse it. */
  | 'ignored'

interface FakeGatewayRequestCommon {
  /** Which protocol's format the request is in, by its version byte (0 is NAT-PMP). */
  kind: 'external-address' | 'announce' | 'map' | 'peer' | 'malformed'
  /** `performance.now()` when it arrived: monotonic milliseconds, for retransmission timing. */
  time: number
  from: { address: string, port: number }
  outcome: FakeGatewayOutcome
  bytes: Uint8Array
  /** Why decoding failed, when `kind` is 'malformed'. */
  error?: MalformedMessageError
}

/** One datagram the gateway received, decoded where possible. */
export type FakeGatewayRequest =
  | FakeGatewayRequestCommon & { protocol: 'pcp', request?: PcpRequest }
  | FakeGatewayRequestCommon & { protocol: 'nat-pmp', request?: NatPmpRequest }

export interface FakeGatewayMapping {
  protocol: TransportProtocol
  internalPort: number
  externalPort: number
  /** Seconds granted by the last create or renew. */
  lifetimeSeconds: number
  /** `performance.now()` at which the mapping lapses. */
  expiresAt: number
  clientAddress: string
  /** The PCP nonce that owns the mapping (RFC 6887 §11.1); undefined if NAT-PMP created it. */
  nonce?: Uint8Array
  createdBy: 'pcp' | 'nat-pmp'
  /** How many times it was renewed after creation. */
  renewals: number
}

/** The key of a mapping in `gateway.mappings`, e.g. 'udp/4000'. */
export function fakeMappingKey (protocol: TransportProtocol, internalPort: number): string {
  return `${protocol}/${internalPort}`
}

/** RFC 6887 §7.2: an error's lifetime tells the client how long to expect the same answer. */
const ERROR_LIFETIME_SECONDS = 30
/** Where the default port choice looks when neither the suggested nor the internal port is free. */
const FIRST_ALLOCATED_PORT = 40_000
/** RFC 6887 §8.2: servers silently drop requests shorter than two bytes (no version and opcode to answer). */
const MIN_REQUEST_SIZE = 2

interface Reply {
  bytes: Uint8Array
  /** The decoy sent first under `staleReplyFirst`. */
  stale?: Uint8Array
  outcome: 'answered' | 'refused-version'
}

export class FakePcpGateway {
  readonly address: string
  readonly port = PCP_SERVER_PORT
  /** The WAN address reported from now on; '0.0.0.0' makes address and MAP requests fail with NETWORK_FAILURE. */
  externalAddress: string
  /** Whether it speaks PCP; may change during a test (a firmware upgrade). */
  pcp: boolean
  /** Whether it speaks NAT-PMP; may change during a test. */
  natPmp: boolean
  /** Every datagram received, in order. */
  readonly requests: FakeGatewayRequest[] = []

  readonly #socket: dgram.Socket
  /** Sends the replies of `behaviour.replyFromOtherPort`. */
  readonly #otherSocket: dgram.Socket
  readonly #mappings = new Map<string, FakeGatewayMapping>()
  readonly #pendingReplies = new Set<NodeJS.Timeout>()
  #behaviour: FakeGatewayBehaviour = {}
  #droppedUnderBehaviour = 0
  #epochBase: number
  #epochSetAt = performance.now()
  #closing: Promise<void> | undefined

  private constructor (options: Required<FakePcpGatewayOptions>, socket: dgram.Socket, otherSocket: dgram.Socket) {
    this.address = options.address
    this.externalAddress = options.externalAddress
    this.pcp = options.pcp
    this.natPmp = options.natPmp
    this.#epochBase = options.epochSeconds
    this.#socket = socket
    this.#otherSocket = otherSocket
    socket.on('message', (message, from) => { this.#onMessage(message, from) })
  }

  /** Binds 127.x.y.z:5351 (and a second socket for `replyFromOtherPort`); rejects if the address is taken. */
  static async start (options: FakePcpGatewayOptions): Promise<FakePcpGateway> {
    if (addressScope(options.address) !== 'loopback') {
      throw new InvalidArgumentError(`the fake gateway binds loopback addresses only, got ${options.address}`)
    }
    const type = isIPv6(options.address) ? 'udp6' : 'udp4'
    const socket = dgram.createSocket({ type })
    const otherSocket = dgram.createSocket({ type })
    for (const each of [socket, otherSocket]) {
      // An unhandled 'error' event would crash the test process; bind errors reach start() below.
      each.on('error', () => {})
    }
    try {
      await bind(socket, PCP_SERVER_PORT, options.address)
      await bind(otherSocket, 0, options.address)
    } catch (error) {
      await Promise.all([closeSocket(socket), closeSocket(otherSocket)])
      throw error
    }
    // A test that forgets close() must not keep its process alive.
    socket.unref()
    otherSocket.unref()
    return new FakePcpGateway({
      address: options.address,
      externalAddress: options.externalAddress,
      pcp: options.pcp ?? true,
      natPmp: options.natPmp ?? true,
      epochSeconds: options.epochSeconds ?? 0
    }, socket, otherSocket)
  }

  get behaviour (): FakeGatewayBehaviour {
    return this.#behaviour
  }

  set behaviour (behaviour: FakeGatewayBehaviour) {
    this.#behaviour = behaviour
    this.#droppedUnderBehaviour = 0
  }

  /** The live mapping table, keyed `${protocol}/${internalPort}`; lapsed mappings are removed on access. */
  get mappings (): Map<string, FakeGatewayMapping> {
    const now = performance.now()
    for (const [key, mapping] of this.#mappings) {
      if (mapping.expiresAt <= now) {
        this.#mappings.delete(key)
      }
    }
    return this.#mappings
  }

  /** Seconds since the epoch was set (RFC 6886 §3.6, RFC 6887 §8.5), sent in every reply. */
  get epochSeconds (): number {
    return this.#epochBase + Math.floor((performance.now() - this.#epochSetAt) / 1000)
  }

  /**
   * Sets the epoch, which then counts up from `seconds`. Setting it lower than clients expect
   * says the gateway lost its state; clear `mappings` too to act that out fully.
   */
  setEpoch (seconds: number): void {
    this.#epochBase = seconds
    this.#epochSetAt = performance.now()
  }

  /** The port `replyFromOtherPort` replies come from. */
  get otherPort (): number {
    return this.#otherSocket.address().port
  }

  /** Stops answering and releases both sockets. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= (async () => {
      for (const timer of this.#pendingReplies) {
        clearTimeout(timer)
      }
      this.#pendingReplies.clear()
      await Promise.all([closeSocket(this.#socket), closeSocket(this.#otherSocket)])
    })()
    await this.#closing
  }

  #onMessage (message: Buffer, from: RemoteInfo): void {
    // The socket is bound to loopback; checking again keeps the fake from ever sending elsewhere.
    if (this.#closing !== undefined || addressScope(from.address) !== 'loopback') {
      return
    }
    const entry = decodeForLog(Uint8Array.from(message), from)
    this.requests.push(entry)

    const behaviour = this.#behaviour
    if (this.#droppedUnderBehaviour < (behaviour.dropFirst ?? 0)) {
      this.#droppedUnderBehaviour++
      entry.outcome = 'dropped'
      return
    }
    if (behaviour.silent === true) {
      entry.outcome = 'silent'
      return
    }
    const reply = this.#answer(entry, from)
    if (reply === undefined) {
      return
    }
    entry.outcome = reply.outcome
    this.#send(reply, from, behaviour)
  }

  #answer (entry: FakeGatewayRequest, from: RemoteInfo): Reply | undefined {
    if (entry.bytes.length < MIN_REQUEST_SIZE) {
      return undefined
    }
    const refuseVersion = (): Reply => ({
      bytes: encodeUnsupportedVersionResponse({ requestOpcode: (entry.bytes[1] ?? 0) & 0x7f, epochSeconds: this.epochSeconds }),
      outcome: 'refused-version'
    })

    if (entry.protocol === 'nat-pmp') {
      if (!this.natPmp) {
        // RFC 6887 §9: a PCP-only server refuses version 0, in the format a NAT-PMP client reads.
        return this.pcp ? refuseVersion() : undefined
      }
      return entry.request === undefined ? undefined : this.#answerNatPmp(entry.request, from)
    }

    const speaksPcp = this.pcp && this.#behaviour.unsupportedVersionForPcp !== true
    if (entry.bytes[0] === PCP_VERSION && speaksPcp) {
      return entry.request === undefined ? undefined : this.#answerPcp(entry.request, from)
    }
    // RFC 6886 §3.5: a NAT-PMP server answers any other version with UNSUPP_VERSION; that is
    // how a PCP client learns to fall back (RFC 6887 §9).
    return this.natPmp || this.#behaviour.unsupportedVersionForPcp === true ? refuseVersion() : undefined
  }

  #answerNatPmp (request: NatPmpRequest, from: RemoteInfo): Reply {
    const epochSeconds = this.epochSeconds
    if (request.opcode === 'external-address') {
      const hasAddress = this.externalAddress !== '0.0.0.0'
      return this.#natPmpReply({
        opcode: 'external-address',
        truncated: false,
        epochSeconds,
        // RFC 6886 §3.5: NETWORK_FAILURE while the gateway has no external address yet.
        ...(hasAddress
          ? { resultCode: NATPMP_RESULT_CODES.SUCCESS, externalAddress: this.externalAddress }
          : { resultCode: NATPMP_RESULT_CODES.NETWORK_FAILURE })
      })
    }

    const { protocol, internalPort } = request
    const answer = (resultCode: number, externalPort: number, lifetimeSeconds: number): Reply =>
      this.#natPmpReply({ opcode: 'map', truncated: false, protocol, resultCode, epochSeconds, internalPort, externalPort, lifetimeSeconds })

    if (this.#behaviour.resultCode !== undefined) {
      return answer(this.#behaviour.resultCode, 0, 0)
    }
    if (request.lifetimeSeconds === 0) {
      // RFC 6886 §3.4: internal port 0 deletes all of the client's mappings for the protocol.
      for (const [key, mapping] of this.mappings) {
        if (mapping.protocol === protocol && (internalPort === 0 || mapping.internalPort === internalPort)) {
          this.#mappings.delete(key)
        }
      }
      return answer(NATPMP_RESULT_CODES.SUCCESS, 0, 0)
    }
    if (this.externalAddress === '0.0.0.0') {
      return answer(NATPMP_RESULT_CODES.NETWORK_FAILURE, 0, 0)
    }
    const mapping = this.#grant('nat-pmp', protocol, internalPort, request.suggestedExternalPort, request.lifetimeSeconds, from.address)
    return answer(NATPMP_RESULT_CODES.SUCCESS, mapping.externalPort, mapping.lifetimeSeconds)
  }

  /** Encodes a NAT-PMP reply with its decoy: the same reply under another opcode. */
  #natPmpReply (response: NatPmpResponse): Reply {
    const decoy: NatPmpResponse = response.opcode === 'map'
      ? { ...response, protocol: response.protocol === 'udp' ? 'tcp' : 'udp' }
      : { opcode: 'map', truncated: false, protocol: 'udp', resultCode: 0, epochSeconds: response.epochSeconds ?? 0, internalPort: 1, externalPort: 1, lifetimeSeconds: 1 }
    return { bytes: encodeNatPmpResponse(response), stale: encodeNatPmpResponse(decoy), outcome: 'answered' }
  }

  #answerPcp (request: PcpRequest, from: RemoteInfo): Reply | undefined {
    const epochSeconds = this.epochSeconds
    // RFC 6887 §8.2: the client address field must be the packet's source (no NAT in between).
    const resultCode = sameAddress(request.clientAddress, from.address)
      ? PCP_RESULT_CODES.SUCCESS
      : PCP_RESULT_CODES.ADDRESS_MISMATCH
    switch (request.opcode) {
      case 'announce': {
        const lifetimeSeconds = resultCode === PCP_RESULT_CODES.SUCCESS ? 0 : ERROR_LIFETIME_SECONDS
        return this.#pcpReply(encodePcpResponse({ opcode: 'announce', resultCode, lifetimeSeconds, epochSeconds }))
      }
      case 'map':
        return resultCode === PCP_RESULT_CODES.SUCCESS
          ? this.#answerPcpMap(request, epochSeconds)
          : this.#pcpMapError(request, resultCode, epochSeconds)
      case 'peer':
        return undefined // natmapper never sends PEER; this fake does not implement it
    }
  }

  #answerPcpMap (request: PcpMapRequest, epochSeconds: number): Reply {
    const { map } = request
    const fail = (resultCode: number): Reply => this.#pcpMapError(request, resultCode, epochSeconds)
    if (this.#behaviour.resultCode !== undefined) {
      return fail(this.#behaviour.resultCode)
    }
    if (map.protocol !== 'tcp' && map.protocol !== 'udp') {
      return fail(PCP_RESULT_CODES.UNSUPP_PROTOCOL)
    }
    if (map.internalPort === 0) {
      return fail(PCP_RESULT_CODES.MALFORMED_REQUEST) // "all ports" (RFC 6887 §11.1) is not implemented here
    }
    const key = fakeMappingKey(map.protocol, map.internalPort)
    const existing = this.mappings.get(key)
    if (existing?.nonce !== undefined && !sameBytes(existing.nonce, map.nonce)) {
      // RFC 6887 §11.3: another client (another nonce) owns this mapping.
      return fail(PCP_RESULT_CODES.NOT_AUTHORIZED)
    }
    const success = (externalPort: number, lifetimeSeconds: number): Reply => this.#pcpReply(encodePcpResponse({
      opcode: 'map',
      resultCode: PCP_RESULT_CODES.SUCCESS,
      lifetimeSeconds,
      epochSeconds,
      map: { nonce: map.nonce, protocol: map.protocol, internalPort: map.internalPort, externalPort, externalAddress: this.externalAddress }
    }), map.nonce)

    if (request.lifetimeSeconds === 0) {
      // RFC 6887 §15: lifetime 0 deletes; deleting what does not exist succeeds too.
      this.#mappings.delete(key)
      return success(existing?.externalPort ?? map.suggestedExternalPort, 0)
    }
    if (this.externalAddress === '0.0.0.0') {
      return fail(PCP_RESULT_CODES.NETWORK_FAILURE)
    }
    const mapping = this.#grant('pcp', map.protocol, map.internalPort, map.suggestedExternalPort, request.lifetimeSeconds,
      request.clientAddress, map.nonce)
    return success(mapping.externalPort, mapping.lifetimeSeconds)
  }

  /** RFC 6887 §8.2: an error MAP reply copies the request's MAP fields. */
  #pcpMapError (request: PcpMapRequest, resultCode: number, epochSeconds: number): Reply {
    const { map } = request
    return this.#pcpReply(encodePcpResponse({
      opcode: 'map',
      resultCode,
      lifetimeSeconds: ERROR_LIFETIME_SECONDS,
      epochSeconds,
      map: { nonce: map.nonce, protocol: map.protocol, internalPort: map.internalPort, externalPort: map.suggestedExternalPort, externalAddress: map.suggestedExternalAddress }
    }), map.nonce)
  }

  /**
   * A PCP reply with its decoy: the same MAP reply under the bitwise inverse of the nonce, or for
   * an ANNOUNCE (which has no nonce) a MAP reply the client never asked for.
   */
  #pcpReply (bytes: Uint8Array, nonce?: Uint8Array): Reply {
    const staleNonce = nonce === undefined ? new Uint8Array(PCP_NONCE_SIZE).fill(0xff) : nonce.map((byte) => ~byte & 0xff)
    const stale = encodePcpResponse({
      opcode: 'map',
      resultCode: PCP_RESULT_CODES.SUCCESS,
      lifetimeSeconds: 1,
      epochSeconds: this.epochSeconds,
      map: { nonce: staleNonce, protocol: 'udp', internalPort: 1, externalPort: 1, externalAddress: '0.0.0.0' }
    })
    if (nonce === undefined) {
      return { bytes, stale, outcome: 'answered' }
    }
    // For a MAP, the decoy is the real reply with another nonce, so only the nonce tells them
    // apart. The nonce is the first MAP field, right after the header (RFC 6887 §11.1).
    const decoy = Uint8Array.from(bytes)
    decoy.set(staleNonce, PCP_HEADER_SIZE)
    return { bytes, stale: decoy, outcome: 'answered' }
  }

  #grant (createdBy: 'pcp' | 'nat-pmp', protocol: TransportProtocol, internalPort: number, suggestedPort: number,
    requestedSeconds: number, clientAddress: string, nonce?: Uint8Array): FakeGatewayMapping {
    const key = fakeMappingKey(protocol, internalPort)
    const lifetimeSeconds = this.#behaviour.grantLifetime?.(requestedSeconds) ?? requestedSeconds
    const expiresAt = performance.now() + lifetimeSeconds * 1000
    const existing = this.mappings.get(key)
    if (existing !== undefined && this.#behaviour.renewalKeepsExpiry === true) {
      existing.renewals++
      existing.lifetimeSeconds = Math.max(0, Math.floor((existing.expiresAt - performance.now()) / 1000))
      return existing
    }
    if (existing !== undefined) {
      // A renewal keeps the external port (RFC 6887 §11.3, RFC 6886 §3.3).
      Object.assign(existing, { lifetimeSeconds, expiresAt, renewals: existing.renewals + 1 }, nonce === undefined ? {} : { nonce })
      return existing
    }
    const externalPort = this.#behaviour.grantExternalPort?.(suggestedPort, internalPort) ??
      this.#freeExternalPort(protocol, suggestedPort, internalPort)
    const mapping: FakeGatewayMapping = {
      protocol, internalPort, externalPort, lifetimeSeconds, expiresAt, clientAddress, createdBy, renewals: 0,
      ...(nonce === undefined ? {} : { nonce })
    }
    this.#mappings.set(key, mapping)
    return mapping
  }

  /** The suggested port if free (RFC 6887 §11.3), else the internal port, else the first free one from 40000. */
  #freeExternalPort (protocol: TransportProtocol, suggestedPort: number, internalPort: number): number {
    const taken = new Set([...this.mappings.values()]
      .filter((mapping) => mapping.protocol === protocol)
      .map((mapping) => mapping.externalPort))
    const preferred = [suggestedPort, internalPort].find((port) => port !== 0 && !taken.has(port))
    if (preferred !== undefined) {
      return preferred
    }
    let port = FIRST_ALLOCATED_PORT
    while (taken.has(port)) {
      port++
    }
    return port
  }

  #send (reply: Reply, to: RemoteInfo, behaviour: FakeGatewayBehaviour): void {
    const socket = behaviour.replyFromOtherPort === true ? this.#otherSocket : this.#socket
    const datagrams = [
      ...(behaviour.staleReplyFirst === true && reply.stale !== undefined ? [reply.stale] : []),
      ...Array<Uint8Array>(1 + (behaviour.duplicates ?? 0)).fill(reply.bytes)
    ]
    const transmit = (): void => {
      if (this.#closing !== undefined) {
        return
      }
      for (const datagram of datagrams) {
        socket.send(datagram, to.port, to.address)
      }
    }
    const delayMs = behaviour.delayMs ?? 0
    if (delayMs <= 0) {
      transmit()
      return
    }
    const timer = setTimeout(() => {
      this.#pendingReplies.delete(timer)
      transmit()
    }, delayMs)
    timer.unref()
    this.#pendingReplies.add(timer)
  }
}

function decodeForLog (bytes: Uint8Array, from: RemoteInfo): FakeGatewayRequest {
  const common: Omit<FakeGatewayRequestCommon, 'kind'> = {
    time: performance.now(),
    from: { address: from.address, port: from.port },
    outcome: 'ignored',
    bytes
  }
  try {
    if (bytes[0] === NATPMP_VERSION) {
      const request = decodeNatPmpRequest(bytes)
      return { ...common, protocol: 'nat-pmp', kind: request.opcode, request }
    }
    const request = decodePcpRequest(bytes)
    return { ...common, protocol: 'pcp', kind: request.opcode, request }
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) {
      throw error // a codec bug: let the test fail loudly
    }
    const protocol = bytes[0] === NATPMP_VERSION ? 'nat-pmp' : 'pcp'
    return { ...common, protocol, kind: 'malformed', error }
  }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index])
}

async function bind (socket: dgram.Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => { reject(error) }
    socket.once('error', onError)
    socket.bind(port, address, () => {
      socket.off('error', onError)
      resolve()
    })
  })
}

async function closeSocket (socket: dgram.Socket): Promise<void> {
  await new Promise<void>((resolve) => {
    try {
      socket.close(() => { resolve() })
    } catch {
      resolve() // never bound, or already closed
    }
  })
}
