/**
 * NAT-PMP (RFC 6886) messages: pure encoders and decoders over `Uint8Array`, with no sockets,
 * timers or clock. The client side encodes requests and decodes responses; the server side
 * (decodeRequest, encodeResponse) serves the fake gateway in tests and round-trip tests.
 *
 * Decoders accept only what the RFC lays out, bounds-check every field, and throw
 * `MalformedMessageError('nat-pmp', reason)` for anything else.
 */

import type { TransportProtocol } from '../core/gateway-client.js'
import { InvalidArgumentError, MalformedMessageError } from '../errors.js'
import { ByteReader } from '../net/byte-reader.js'
import { ByteWriter, checkUnsigned } from '../net/byte-writer.js'
import { decodeIPv4, encodeIPv4, IPV4_SIZE } from '../net/ip-address.js'
import { resultCodeNamer } from '../net/result-codes.js'

/** RFC 6886 §3: NAT-PMP is version 0 (PCP, its successor, is version 2). */
export const NATPMP_VERSION = 0

/** RFC 6886 §3.2, §3.3: request opcodes. */
export const NATPMP_OPCODE = { EXTERNAL_ADDRESS: 0, MAP_UDP: 1, MAP_TCP: 2 } as const

/** RFC 6886 §3.2: a response's opcode is the request's plus 128. */
export const NATPMP_RESPONSE_BIT = 0x80

/**
 * Longest message accepted. Bytes after a message's fields are ignored, up to this size: PCP's
 * limit for the same port (RFC 6887 §7). Anything longer is not a NAT-PMP message.
 */
export const NATPMP_MAX_MESSAGE_SIZE = 1100

/** RFC 6886 §3.5 result codes, name → number. */
export const NATPMP_RESULT_CODES = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  /** Refused, e.g. the box supports mapping but the user turned it off. */
  NOT_AUTHORIZED: 2,
  /** E.g. the NAT has not obtained a DHCP lease yet. */
  NETWORK_FAILURE: 3,
  /** The NAT cannot create more mappings now. */
  OUT_OF_RESOURCES: 4,
  UNSUPP_OPCODE: 5
} as const

/** The name of a NAT-PMP result code, `UNKNOWN_<n>` for codes RFC 6886 does not define. */
export const natPmpResultName: (code: number) => string = resultCodeNamer(NATPMP_RESULT_CODES)

/** RFC 6886 §3.2, §3.3: message sizes. */
const EXTERNAL_ADDRESS_REQUEST_SIZE = 2
const MAP_REQUEST_SIZE = 12
const EXTERNAL_ADDRESS_RESPONSE_SIZE = 12
const MAP_RESPONSE_SIZE = 16
/** Version, opcode, result code: the start of every response. */
const RESPONSE_HEADER_SIZE = 4
/** The header plus the epoch: what routers that truncate error replies still send. */
const RESPONSE_HEADER_WITH_EPOCH_SIZE = 8

export interface NatPmpExternalAddressRequest {
  opcode: 'external-address'
}

export interface NatPmpMapRequest {
  opcode: 'map'
  protocol: TransportProtocol
  internalPort: number
  /** 0 lets the gateway choose; always 0 in a delete (RFC 6886 §3.4). */
  suggestedExternalPort: number
  /** Seconds; 0 deletes the mapping (RFC 6886 §3.4). */
  lifetimeSeconds: number
}

export type NatPmpRequest = NatPmpExternalAddressRequest | NatPmpMapRequest

/** RFC 6886 §3.2: the answer to an external address request, at full size. */
export interface NatPmpExternalAddressResponse {
  opcode: 'external-address'
  truncated: false
  resultCode: number
  /** Seconds since the gateway's port-mapping state was (re)initialised (RFC 6886 §3.6). */
  epochSeconds: number
  /** Present when `resultCode` is 0: RFC 6886 §3.2 leaves the field undefined otherwise. */
  externalAddress?: string
}

/** RFC 6886 §3.3: the answer to a map request, at full size. */
export interface NatPmpMapResponse {
  opcode: 'map'
  truncated: false
  protocol: TransportProtocol
  resultCode: number
  epochSeconds: number
  internalPort: number
  /** The port the gateway granted, which may differ from the one suggested. */
  externalPort: number
  /** Seconds granted, which may differ from those requested. */
  lifetimeSeconds: number
}

/**
 * An error reply cut short after the result code (4 bytes) or the epoch (8 bytes). RFC 6886
 * does not allow it, but routers send it, and the result code is what a client needs. The
 * decoder never returns one with result code 0.
 */
export type NatPmpTruncatedErrorResponse =
  | { opcode: 'external-address', truncated: true, resultCode: number, epochSeconds?: number }
  | { opcode: 'map', truncated: true, protocol: TransportProtocol, resultCode: number, epochSeconds?: number }

/** A decoded response. Branch on `opcode`, then treat `truncated || resultCode !== 0` as failure. */
export type NatPmpResponse = NatPmpExternalAddressResponse | NatPmpMapResponse | NatPmpTruncatedErrorResponse

/** RFC 6886 §3.2: the 2-byte request for the gateway's external IPv4 address. */
export function encodeExternalAddressRequest (): Uint8Array {
  return new ByteWriter(EXTERNAL_ADDRESS_REQUEST_SIZE)
    .uint8(NATPMP_VERSION, 'version')
    .uint8(NATPMP_OPCODE.EXTERNAL_ADDRESS, 'opcode')
    .finish()
}

/**
 * RFC 6886 §3.3: the 12-byte request to create, renew or (lifetime 0) delete a mapping. A delete
 * carries suggested external port 0 whatever is passed, as RFC 6886 §3.4 requires.
 */
export function encodeMapRequest (request: Omit<NatPmpMapRequest, 'opcode'>): Uint8Array {
  const isDelete = checkUnsigned(request.lifetimeSeconds, 32, 'lifetimeSeconds') === 0
  return new ByteWriter(MAP_REQUEST_SIZE)
    .uint8(NATPMP_VERSION, 'version')
    .uint8(mapOpcode(request.protocol), 'opcode')
    .zeros(2, 'reserved')
    .uint16(request.internalPort, 'internalPort')
    .uint16(isDelete ? 0 : request.suggestedExternalPort, 'suggestedExternalPort')
    .uint32(request.lifetimeSeconds, 'lifetimeSeconds')
    .finish()
}

/** Encodes either request; the inverse of `decodeRequest`. */
export function encodeRequest (request: NatPmpRequest): Uint8Array {
  return request.opcode === 'external-address' ? encodeExternalAddressRequest() : encodeMapRequest(request)
}

/** Decodes a gateway's reply. Throws MalformedMessageError unless it is a NAT-PMP response. */
export function decodeResponse (bytes: Uint8Array): NatPmpResponse {
  checkMaximumSize(bytes)
  if (bytes.length < RESPONSE_HEADER_SIZE) {
    throw malformed(`${bytes.length}-byte response is shorter than the ${RESPONSE_HEADER_SIZE}-byte header`)
  }
  const reader = new ByteReader('nat-pmp', bytes)
  checkVersion(reader.uint8('version'))
  const opcodeByte = reader.uint8('opcode')
  if ((opcodeByte & NATPMP_RESPONSE_BIT) === 0) {
    throw malformed(`opcode ${opcodeByte} is a request's, not a response's (top bit clear)`)
  }
  const operation = decodeOpcode(opcodeByte & ~NATPMP_RESPONSE_BIT)
  const resultCode = reader.uint16('result code')

  const fullSize = operation.opcode === 'map' ? MAP_RESPONSE_SIZE : EXTERNAL_ADDRESS_RESPONSE_SIZE
  if (bytes.length < fullSize) {
    // Routers truncate error replies after the result code or the epoch; a short success is broken.
    const isTruncatedError = resultCode !== NATPMP_RESULT_CODES.SUCCESS &&
      (bytes.length === RESPONSE_HEADER_SIZE || bytes.length === RESPONSE_HEADER_WITH_EPOCH_SIZE)
    if (!isTruncatedError) {
      throw malformed(`${bytes.length}-byte ${operation.opcode} response with result ${natPmpResultName(resultCode)} is shorter than the ${fullSize} bytes it needs`)
    }
    const epoch = reader.remaining === 0 ? {} : { epochSeconds: reader.uint32('epoch') }
    return { ...operation, truncated: true, resultCode, ...epoch }
  }

  const epochSeconds = reader.uint32('epoch')
  // Any bytes after the fields are ignored, so a longer reply from a later revision still decodes.
  if (operation.opcode === 'external-address') {
    const externalAddress = decodeIPv4(reader.bytes(IPV4_SIZE, 'external address'))
    return {
      opcode: 'external-address',
      truncated: false,
      resultCode,
      epochSeconds,
      ...(resultCode === NATPMP_RESULT_CODES.SUCCESS ? { externalAddress } : {})
    }
  }
  return {
    opcode: 'map',
    truncated: false,
    protocol: operation.protocol,
    resultCode,
    epochSeconds,
    internalPort: reader.uint16('internal port'),
    externalPort: reader.uint16('mapped external port'),
    lifetimeSeconds: reader.uint32('lifetime')
  }
}

/**
 * Server side: decodes a client's request. Throws MalformedMessageError for a wrong version, a
 * response (RFC 6886 §3.5 says servers ignore those), an unknown opcode or a short message.
 */
export function decodeRequest (bytes: Uint8Array): NatPmpRequest {
  checkMaximumSize(bytes)
  const reader = new ByteReader('nat-pmp', bytes)
  checkVersion(reader.uint8('version'))
  const opcodeByte = reader.uint8('opcode')
  if ((opcodeByte & NATPMP_RESPONSE_BIT) !== 0) {
    throw malformed(`opcode ${opcodeByte} is a response's, not a request's (top bit set)`)
  }
  const operation = decodeOpcode(opcodeByte)
  if (operation.opcode === 'external-address') {
    return operation
  }
  if (bytes.length < MAP_REQUEST_SIZE) {
    throw malformed(`${bytes.length}-byte map request is shorter than ${MAP_REQUEST_SIZE} bytes`)
  }
  reader.skip(2, 'reserved') // RFC 6886 §3.3: ignored on reception
  return {
    opcode: 'map',
    protocol: operation.protocol,
    internalPort: reader.uint16('internal port'),
    suggestedExternalPort: reader.uint16('suggested external port'),
    lifetimeSeconds: reader.uint32('requested lifetime')
  }
}

/**
 * Server side: encodes a response. A truncated error response is written at 8 bytes with an
 * epoch, 4 without, like the routers that send them.
 */
export function encodeResponse (response: NatPmpResponse): Uint8Array {
  const opcode = NATPMP_RESPONSE_BIT |
    (response.opcode === 'map' ? mapOpcode(response.protocol) : NATPMP_OPCODE.EXTERNAL_ADDRESS)

  if (response.truncated) {
    if (response.resultCode === NATPMP_RESULT_CODES.SUCCESS) {
      throw new InvalidArgumentError('a truncated response must carry an error result code')
    }
    const hasEpoch = response.epochSeconds !== undefined
    const writer = new ByteWriter(hasEpoch ? RESPONSE_HEADER_WITH_EPOCH_SIZE : RESPONSE_HEADER_SIZE)
    writeResponseHeader(writer, opcode, response.resultCode)
    if (response.epochSeconds !== undefined) {
      writer.uint32(response.epochSeconds, 'epochSeconds')
    }
    return writer.finish()
  }

  if (response.opcode === 'external-address') {
    // RFC 6886 §3.2: the address field is zero in an error response.
    const address = response.resultCode === NATPMP_RESULT_CODES.SUCCESS ? response.externalAddress : undefined
    if (response.resultCode === NATPMP_RESULT_CODES.SUCCESS && address === undefined) {
      throw new InvalidArgumentError('a successful external address response needs externalAddress')
    }
    return writeResponseHeader(new ByteWriter(EXTERNAL_ADDRESS_RESPONSE_SIZE), opcode, response.resultCode)
      .uint32(response.epochSeconds, 'epochSeconds')
      .bytes(encodeIPv4(address ?? '0.0.0.0'), 'externalAddress')
      .finish()
  }

  return writeResponseHeader(new ByteWriter(MAP_RESPONSE_SIZE), opcode, response.resultCode)
    .uint32(response.epochSeconds, 'epochSeconds')
    .uint16(response.internalPort, 'internalPort')
    .uint16(response.externalPort, 'externalPort')
    .uint32(response.lifetimeSeconds, 'lifetimeSeconds')
    .finish()
}

/**
 * Server side: the reply a NAT-PMP server sends to a request whose version it does not speak,
 * such as a PCP request (RFC 6886 §3.5 with erratum 3618: opcode is the request's plus 128,
 * result UNSUPP_VERSION). This is how a PCP client learns the gateway speaks only NAT-PMP
 * (RFC 6887 §9); a PCP-only server answers NAT-PMP requests the same way.
 */
export function encodeUnsupportedVersionResponse ({ requestOpcode, epochSeconds }: {
  /** The opcode byte of the refused request, without the response bit (0-127). */
  requestOpcode: number
  epochSeconds: number
}): Uint8Array {
  if (checkUnsigned(requestOpcode, 8, 'requestOpcode') >= NATPMP_RESPONSE_BIT) {
    throw new InvalidArgumentError(`requestOpcode must be from 0 to 127, got ${requestOpcode}`)
  }
  return writeResponseHeader(new ByteWriter(RESPONSE_HEADER_WITH_EPOCH_SIZE),
    NATPMP_RESPONSE_BIT | requestOpcode, NATPMP_RESULT_CODES.UNSUPP_VERSION)
    .uint32(epochSeconds, 'epochSeconds')
    .finish()
}

type DecodedOpcode = { opcode: 'external-address' } | { opcode: 'map', protocol: TransportProtocol }

function decodeOpcode (opcode: number): DecodedOpcode {
  switch (opcode) {
    case NATPMP_OPCODE.EXTERNAL_ADDRESS: return { opcode: 'external-address' }
    case NATPMP_OPCODE.MAP_UDP: return { opcode: 'map', protocol: 'udp' }
    case NATPMP_OPCODE.MAP_TCP: return { opcode: 'map', protocol: 'tcp' }
    default: throw malformed(`unknown opcode ${opcode}`)
  }
}

function mapOpcode (protocol: TransportProtocol): number {
  switch (protocol) {
    case 'udp': return NATPMP_OPCODE.MAP_UDP
    case 'tcp': return NATPMP_OPCODE.MAP_TCP
    default: throw new InvalidArgumentError(`protocol must be 'tcp' or 'udp', got ${JSON.stringify(protocol)}`)
  }
}

function writeResponseHeader (writer: ByteWriter, opcode: number, resultCode: number): ByteWriter {
  return writer
    .uint8(NATPMP_VERSION, 'version')
    .uint8(opcode, 'opcode')
    .uint16(resultCode, 'resultCode')
}

function checkVersion (version: number): void {
  if (version !== NATPMP_VERSION) {
    throw malformed(`version ${version}, expected ${NATPMP_VERSION}`)
  }
}

function checkMaximumSize (bytes: Uint8Array): void {
  if (bytes.length > NATPMP_MAX_MESSAGE_SIZE) {
    throw malformed(`${bytes.length}-byte message is longer than ${NATPMP_MAX_MESSAGE_SIZE} bytes`)
  }
}

function malformed (reason: string): MalformedMessageError {
  return new MalformedMessageError('nat-pmp', reason)
}
