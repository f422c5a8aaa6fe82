/**
 * PCP (RFC 6887) messages: pure encoders and decoders over `Uint8Array`, with no sockets, timers,
 * clock or randomness (the caller supplies the MAP nonce). The client side encodes ANNOUNCE and
 * MAP requests and decodes responses; the server side (decodeRequest, encodeResponse) serves the
 * fake gateway in tests and round-trip tests. PEER is recognised, not used.
 *
 * Decoders accept only what the RFC lays out, bounds-check every field, and throw
 * `MalformedMessageError('pcp', reason)` for anything else.
 */

import { decodeIPv6Field, encodeIPv6Field, hasIPv4MappedPrefix, IPV6_SIZE, isIP } from '../net/ip-address.js'
import type { TransportProtocol } from '../core/gateway-client.js'
import { InvalidArgumentError, MalformedMessageError } from '../errors.js'
import { NATPMP_RESULT_CODES, NATPMP_VERSION } from '../natpmp/codec.js'
import { ByteReader } from '../net/byte-reader.js'
import { ByteWriter, checkUnsigned } from '../net/byte-writer.js'
import { resultCodeNamer } from '../net/result-codes.js'

/** RFC 6887 §7: this PCP. Version 0 is NAT-PMP, version 1 was used by pre-RFC drafts (§9). */
export const PCP_VERSION = 2

/** RFC 6887 §7.1: opcodes; PEER is recognised only. */
export const PCP_OPCODE = { ANNOUNCE: 0, MAP: 1, PEER: 2 } as const

/** RFC 6887 §7.1, §7.2: the R bit, set in responses, above the 7-bit opcode. */
export const PCP_RESPONSE_BIT = 0x80

/** RFC 6887 §7: largest PCP message. */
export const PCP_MAX_MESSAGE_SIZE = 1100

/** RFC 6887 §7.1, §7.2: request and response headers are both 24 bytes. */
export const PCP_HEADER_SIZE = 24

/** RFC 6887 §11.1: nonce, protocol, reserved, internal port, external port, external address. */
export const PCP_MAP_DATA_SIZE = 36

/** RFC 6887 §12.1: the MAP fields, then the remote peer's port, reserved, and address. */
export const PCP_PEER_DATA_SIZE = 56

/** RFC 6887 §11.1: the mapping nonce is 96 bits. */
export const PCP_NONCE_SIZE = 12

/** Version, opcode and result code: enough to recognise an UNSUPP_VERSION reply of any version (RFC 6887 §9). */
const VERSION_MISMATCH_MIN_SIZE = 4

/** RFC 6887 §13: option codes defined by the base specification. */
export const PCP_OPTION = { THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 } as const

/** IANA protocol numbers for the MAP Protocol field (RFC 6887 §11.1). */
export const IANA_PROTOCOL_NUMBER = { tcp: 6, udp: 17 } as const

/** RFC 6887 §7.4 result codes, name → number. */
export const PCP_RESULT_CODES = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13
} as const

/** The name of a PCP result code, `UNKNOWN_<n>` for codes RFC 6887 does not define. */
export const pcpResultName: (code: number) => string = resultCodeNamer(PCP_RESULT_CODES)

export type PcpOpcode = 'announce' | 'map' | 'peer'

/** RFC 6887 §7.3: an option as carried, its data without the padding. */
export interface PcpOption {
  code: number
  data: Uint8Array
}

/** The MAP fields of a request (RFC 6887 §11.1). */
export interface PcpMapRequestData {
  nonce: Uint8Array
  /** 'tcp', 'udp', or another IANA protocol number (0 means all protocols). */
  protocol: TransportProtocol | number
  internalPort: number
  suggestedExternalPort: number
  /** Dotted quad for IPv4 (carried IPv4-mapped), otherwise IPv6 text. */
  suggestedExternalAddress: string
}

/** The MAP fields of a response (RFC 6887 §11.2): what the server assigned. */
export interface PcpMapResponseData {
  nonce: Uint8Array
  protocol: TransportProtocol | number
  internalPort: number
  externalPort: number
  /** Dotted quad for IPv4 (carried IPv4-mapped), otherwise RFC 5952 IPv6 text. */
  externalAddress: string
}

interface PcpRequestHeader {
  version: typeof PCP_VERSION
  lifetimeSeconds: number
  /** RFC 6887 §7.1: the client's own address, which the server compares with the packet's source. */
  clientAddress: string
  options: PcpOption[]
}

export interface PcpAnnounceRequest extends PcpRequestHeader { opcode: 'announce', map?: undefined }
export interface PcpMapRequest extends PcpRequestHeader { opcode: 'map', map: PcpMapRequestData }
/** Recognised so that it decodes; its opcode-specific data is not exposed. */
export interface PcpPeerRequest extends PcpRequestHeader { opcode: 'peer', map?: undefined }
export type PcpRequest = PcpAnnounceRequest | PcpMapRequest | PcpPeerRequest

interface PcpResponseHeader {
  kind: 'response'
  version: typeof PCP_VERSION
  resultCode: number
  /** Seconds granted; for an error, how long the error is expected to last (RFC 6887 §7.2). */
  lifetimeSeconds: number
  /** The server's epoch (RFC 6887 §8.5), for noticing that it lost its state. */
  epochSeconds: number
  options: PcpOption[]
}

export interface PcpAnnounceResponse extends PcpResponseHeader { opcode: 'announce', map?: undefined }
export interface PcpMapResponse extends PcpResponseHeader { opcode: 'map', map: PcpMapResponseData }
/** Recognised so that it decodes; its opcode-specific data is not exposed. */
export interface PcpPeerResponse extends PcpResponseHeader { opcode: 'peer', map?: undefined }
export type PcpResponse = PcpAnnounceResponse | PcpMapResponse | PcpPeerResponse

/**
 * A server that does not speak PCP version 2 said so (RFC 6887 §9): `serverVersion` 0 is a
 * NAT-PMP-only server, which is the client's cue to fall back to NAT-PMP.
 */
export interface PcpVersionMismatch {
  kind: 'version-mismatch'
  serverVersion: number
}

export type PcpDecoded = PcpResponse | PcpVersionMismatch

/** RFC 6887 §14.1: ANNOUNCE, a header-only request with lifetime 0, which any PCP server answers. */
export function encodeAnnounceRequest ({ clientAddress, options = [] }: {
  clientAddress: string
  options?: readonly PcpOption[]
}): Uint8Array {
  return encodeRequest({ opcode: 'announce', lifetimeSeconds: 0, clientAddress, options })
}

/**
 * RFC 6887 §11.1: MAP, creating, renewing or (lifetime 0, RFC 6887 §15) deleting a mapping.
 * 60 bytes plus options.
 */
export function encodeMapRequest (request: {
  clientAddress: string
  lifetimeSeconds: number
  /** 12 bytes, kept for the mapping's whole life: renewals and the delete reuse it. */
  nonce: Uint8Array
  protocol: TransportProtocol
  internalPort: number
  /** 0 lets the server choose. */
  suggestedExternalPort: number
  /**
   * Defaults to the all-zeros address of the client's family, meaning "any" (RFC 6887 §11.1):
   * `::ffff:0.0.0.0` for an IPv4 client, `::` for an IPv6 one.
   */
  suggestedExternalAddress?: string
  options?: readonly PcpOption[]
}): Uint8Array {
  if (request.protocol !== 'tcp' && request.protocol !== 'udp') {
    throw new InvalidArgumentError(`protocol must be 'tcp' or 'udp', got ${JSON.stringify(request.protocol)}`)
  }
  return encodeRequest({
    opcode: 'map',
    lifetimeSeconds: request.lifetimeSeconds,
    clientAddress: request.clientAddress,
    options: request.options,
    map: {
      nonce: request.nonce,
      protocol: request.protocol,
      internalPort: request.internalPort,
      suggestedExternalPort: request.suggestedExternalPort,
      suggestedExternalAddress: request.suggestedExternalAddress ?? anyAddressOfFamily(request.clientAddress)
    }
  })
}

/** Encodes an ANNOUNCE or MAP request as given; the inverse of `decodeRequest`. */
export function encodeRequest (request: {
  opcode: 'announce'
  lifetimeSeconds: number
  clientAddress: string
  options?: readonly PcpOption[] | undefined
} | {
  opcode: 'map'
  lifetimeSeconds: number
  clientAddress: string
  map: PcpMapRequestData
  options?: readonly PcpOption[] | undefined
}): Uint8Array {
  const options = request.options ?? []
  const dataSize = request.opcode === 'map' ? PCP_MAP_DATA_SIZE : 0
  const writer = new ByteWriter(messageSize(dataSize, options))
    .uint8(PCP_VERSION, 'version')
    .uint8(opcodeNumber(request.opcode), 'opcode') // R bit clear: a request
    .zeros(2, 'reserved')
    .uint32(request.lifetimeSeconds, 'lifetimeSeconds')
    .bytes(encodeAddressField(request.clientAddress, 'clientAddress'), 'clientAddress')
  if (request.opcode === 'map') {
    const { suggestedExternalPort: externalPort, suggestedExternalAddress: externalAddress, ...rest } = request.map
    writeMapData(writer, { ...rest, externalPort, externalAddress }, 'suggested')
  }
  return writeOptions(writer, options).finish()
}

/**
 * Decodes a gateway's reply: a PCP response, or the UNSUPP_VERSION answer of a server that does
 * not speak version 2 (RFC 6887 §9). Throws MalformedMessageError for anything else.
 */
export function decodeResponse (bytes: Uint8Array): PcpDecoded {
  checkMaximumSize(bytes)
  if (bytes.length < VERSION_MISMATCH_MIN_SIZE) {
    throw malformed(`${bytes.length}-byte message is too short to be a response`)
  }
  const reader = new ByteReader('pcp', bytes)
  const version = reader.uint8('version')
  if (version !== PCP_VERSION) {
    const mismatch = decodeVersionMismatch(bytes)
    if (mismatch === undefined) {
      throw malformed(`version ${version}, expected ${PCP_VERSION}, and not an UNSUPP_VERSION reply`)
    }
    return mismatch
  }
  const opcodeByte = reader.uint8('opcode')
  if ((opcodeByte & PCP_RESPONSE_BIT) === 0) {
    throw malformed(`R bit clear in opcode byte ${opcodeByte}: a request, not a response`)
  }
  checkMessageSize(bytes)
  const opcode = decodeOpcode(opcodeByte & ~PCP_RESPONSE_BIT)
  reader.skip(1, 'reserved') // RFC 6887 §7.2: ignored on reception
  const resultCode = reader.uint8('result code')
  const lifetimeSeconds = reader.uint32('lifetime')
  const epochSeconds = reader.uint32('epoch time')
  reader.skip(12, 'reserved')

  // One object per reply, written out rather than spread from a header: every renewal decodes one.
  switch (opcode) {
    case 'announce':
      return { kind: 'response', version: PCP_VERSION, resultCode, lifetimeSeconds, epochSeconds, opcode, options: readOptions(reader) }
    case 'map': {
      const map = readMapData(reader, 'assigned')
      return { kind: 'response', version: PCP_VERSION, resultCode, lifetimeSeconds, epochSeconds, opcode, map, options: readOptions(reader) }
    }
    case 'peer':
      reader.skip(PCP_PEER_DATA_SIZE, 'PEER data')
      return { kind: 'response', version: PCP_VERSION, resultCode, lifetimeSeconds, epochSeconds, opcode, options: readOptions(reader) }
  }
}

/**
 * Server side: decodes a client's request. Throws MalformedMessageError for a version other than
 * 2, a response (R bit set), a size that breaks RFC 6887 §7, an unknown opcode, short opcode data
 * or a broken option. (A real server answers some of these with an error; the fake drops them.)
 */
export function decodeRequest (bytes: Uint8Array): PcpRequest {
  checkMaximumSize(bytes)
  const reader = new ByteReader('pcp', bytes)
  const version = reader.uint8('version')
  if (version !== PCP_VERSION) {
    throw malformed(`version ${version}, expected ${PCP_VERSION}`)
  }
  const opcodeByte = reader.uint8('opcode')
  if ((opcodeByte & PCP_RESPONSE_BIT) !== 0) {
    throw malformed(`R bit set in opcode byte ${opcodeByte}: a response, not a request`)
  }
  checkMessageSize(bytes)
  const opcode = decodeOpcode(opcodeByte)
  reader.skip(2, 'reserved') // RFC 6887 §7.1: ignored on reception
  const header = {
    version: PCP_VERSION,
    lifetimeSeconds: reader.uint32('requested lifetime'),
    clientAddress: decodeIPv6Field(reader.bytes(IPV6_SIZE, 'client address'))
  } as const

  switch (opcode) {
    case 'announce':
      return { ...header, opcode, options: readOptions(reader) }
    case 'map': {
      const { externalPort, externalAddress, ...rest } = readMapData(reader, 'suggested')
      const map = { ...rest, suggestedExternalPort: externalPort, suggestedExternalAddress: externalAddress }
      return { ...header, opcode, map, options: readOptions(reader) }
    }
    case 'peer':
      reader.skip(PCP_PEER_DATA_SIZE, 'PEER data')
      return { ...header, opcode, options: readOptions(reader) }
  }
}

/**
 * Server side: encodes an ANNOUNCE or MAP response. Per RFC 6887 §8.2, an error MAP response
 * still carries the request's MAP fields (assigned port and address copied from the suggested).
 */
export function encodeResponse (response: {
  opcode: 'announce'
  resultCode: number
  lifetimeSeconds: number
  epochSeconds: number
  options?: readonly PcpOption[] | undefined
} | {
  opcode: 'map'
  resultCode: number
  lifetimeSeconds: number
  epochSeconds: number
  map: PcpMapResponseData
  options?: readonly PcpOption[] | undefined
}): Uint8Array {
  const options = response.options ?? []
  const dataSize = response.opcode === 'map' ? PCP_MAP_DATA_SIZE : 0
  const writer = new ByteWriter(messageSize(dataSize, options))
    .uint8(PCP_VERSION, 'version')
    .uint8(PCP_RESPONSE_BIT | opcodeNumber(response.opcode), 'opcode')
    .zeros(1, 'reserved')
    .uint8(response.resultCode, 'resultCode')
    .uint32(response.lifetimeSeconds, 'lifetimeSeconds')
    .uint32(response.epochSeconds, 'epochSeconds')
    .zeros(12, 'reserved')
  if (response.opcode === 'map') {
    writeMapData(writer, response.map, 'assigned')
  }
  return writeOptions(writer, options).finish()
}

/**
 * RFC 6887 §9: a server that does not speak version 2 answers UNSUPP_VERSION in its own format.
 * NAT-PMP (version 0, RFC 6886 §3.5) has a 16-bit result code in bytes 2-3; other PCP versions
 * an 8-bit one in byte 3: both read 1. The opcode byte has the response bit, except from NAT-PMP
 * servers that copied RFC 6886's figure before erratum 3618 and send opcode 0.
 */
function decodeVersionMismatch (bytes: Uint8Array): PcpVersionMismatch | undefined {
  const reader = new ByteReader('pcp', bytes)
  const serverVersion = reader.uint8('version')
  const opcodeByte = reader.uint8('opcode')
  const isResponse = (opcodeByte & PCP_RESPONSE_BIT) !== 0
  if (serverVersion === NATPMP_VERSION) {
    const resultCode = reader.uint16('result code')
    const isUnsupportedVersion = resultCode === NATPMP_RESULT_CODES.UNSUPP_VERSION && (isResponse || opcodeByte === 0)
    return isUnsupportedVersion ? { kind: 'version-mismatch', serverVersion } : undefined
  }
  reader.skip(1, 'reserved')
  const resultCode = reader.uint8('result code')
  const isUnsupportedVersion = resultCode === PCP_RESULT_CODES.UNSUPP_VERSION && isResponse
  return isUnsupportedVersion ? { kind: 'version-mismatch', serverVersion } : undefined
}

/** The fields MAP requests and responses share (RFC 6887 §11.1, §11.2); `role` names the port and address. */
interface MapData {
  nonce: Uint8Array
  protocol: TransportProtocol | number
  internalPort: number
  externalPort: number
  externalAddress: string
}

function readMapData (reader: ByteReader, role: 'suggested' | 'assigned'): MapData {
  if (reader.remaining < PCP_MAP_DATA_SIZE) {
    throw malformed(`MAP data is ${reader.remaining} bytes, needs ${PCP_MAP_DATA_SIZE}`)
  }
  const nonce = reader.bytes(PCP_NONCE_SIZE, 'mapping nonce')
  const protocol = protocolFromNumber(reader.uint8('protocol'))
  reader.skip(3, 'reserved') // RFC 6887 §11.1: ignored on reception
  return {
    nonce,
    protocol,
    internalPort: reader.uint16('internal port'),
    externalPort: reader.uint16(`${role} external port`),
    externalAddress: decodeIPv6Field(reader.bytes(IPV6_SIZE, `${role} external address`))
  }
}

function writeMapData (writer: ByteWriter, data: MapData, role: 'suggested' | 'assigned'): void {
  if (data.nonce.length !== PCP_NONCE_SIZE) {
    throw new InvalidArgumentError(`nonce must be ${PCP_NONCE_SIZE} bytes, got ${data.nonce.length}`)
  }
  writer
    .bytes(data.nonce, 'nonce')
    .uint8(protocolToNumber(data.protocol), 'protocol')
    .zeros(3, 'reserved')
    .uint16(data.internalPort, 'internalPort')
    .uint16(data.externalPort, `${role}ExternalPort`)
    .bytes(encodeAddressField(data.externalAddress, `${role}ExternalAddress`), `${role}ExternalAddress`)
}

/** RFC 6887 §7.3 option layout: code, reserved, length of the data, the data padded to 4 bytes. */
const OPTION_HEADER_SIZE = 4

function readOptions (reader: ByteReader): PcpOption[] {
  const options: PcpOption[] = []
  while (reader.remaining > 0) {
    const offset = reader.offset
    const code = reader.uint8('option code')
    reader.skip(1, 'option reserved') // RFC 6887 §7.3: ignored on reception
    const length = reader.uint16('option length')
    const paddedLength = padTo4(length)
    if (paddedLength > reader.remaining) {
      throw malformed(`option ${code} at offset ${offset} has ${length} bytes of data (${paddedLength} padded) but ${reader.remaining} bytes remain`)
    }
    const data = reader.bytes(length, `option ${code} data`)
    reader.skip(paddedLength - length, `option ${code} padding`)
    options.push({ code, data })
  }
  return options
}

function writeOptions (writer: ByteWriter, options: readonly PcpOption[]): ByteWriter {
  for (const option of options) {
    writer
      .uint8(option.code, 'option code')
      .zeros(1, 'option reserved')
      .uint16(option.data.length, 'option data length')
      .bytes(option.data, 'option data')
      .zeros(padTo4(option.data.length) - option.data.length, 'option padding')
  }
  return writer
}

function messageSize (dataSize: number, options: readonly PcpOption[]): number {
  const size = options.reduce((total, option) => total + OPTION_HEADER_SIZE + padTo4(option.data.length),
    PCP_HEADER_SIZE + dataSize)
  if (size > PCP_MAX_MESSAGE_SIZE) {
    throw new InvalidArgumentError(`the message would be ${size} bytes, more than PCP's ${PCP_MAX_MESSAGE_SIZE}: too many options`)
  }
  return size
}

function padTo4 (length: number): number {
  return Math.ceil(length / 4) * 4
}

function decodeOpcode (opcode: number): PcpOpcode {
  switch (opcode) {
    case PCP_OPCODE.ANNOUNCE: return 'announce'
    case PCP_OPCODE.MAP: return 'map'
    case PCP_OPCODE.PEER: return 'peer'
    default: throw malformed(`unknown opcode ${opcode}`)
  }
}

function opcodeNumber (opcode: 'announce' | 'map'): number {
  return opcode === 'map' ? PCP_OPCODE.MAP : PCP_OPCODE.ANNOUNCE
}

function protocolFromNumber (protocol: number): TransportProtocol | number {
  switch (protocol) {
    case IANA_PROTOCOL_NUMBER.tcp: return 'tcp'
    case IANA_PROTOCOL_NUMBER.udp: return 'udp'
    default: return protocol
  }
}

function protocolToNumber (protocol: TransportProtocol | number): number {
  if (protocol === 'tcp' || protocol === 'udp') {
    return IANA_PROTOCOL_NUMBER[protocol]
  }
  return checkUnsigned(protocol, 8, 'protocol')
}

/** RFC 6887 §11.1: the all-zeros address of the client's family means "no preference". */
function anyAddressOfFamily (clientAddress: string): string {
  return hasIPv4MappedPrefix(encodeAddressField(clientAddress, 'clientAddress')) ? '0.0.0.0' : '::'
}

/**
 * The fields of the addresses encoded lately: a client names the same few in every request, and
 * parsing them again each time showed on the first request's path. Read only: the writer copies.
 */
const addressFields = new Map<string, Uint8Array>()
const MAX_ADDRESS_FIELDS = 32

/** RFC 6887 §5: every address field is 16 bytes, IPv4 carried IPv4-mapped. */
function encodeAddressField (address: string, field: string): Uint8Array {
  const known = addressFields.get(address)
  if (known !== undefined) return known
  if (typeof address !== 'string' || isIP(address) === 0) {
    throw new InvalidArgumentError(`${field} must be an IPv4 or IPv6 address, got ${JSON.stringify(address)}`)
  }
  const encoded = encodeIPv6Field(address)
  if (addressFields.size >= MAX_ADDRESS_FIELDS) addressFields.clear()
  addressFields.set(address, encoded)
  return encoded
}

/** RFC 6887 §7, §8.2, §8.3: at least the 24-byte header and a multiple of 4 bytes (the 1100-byte limit is checked first). */
function checkMessageSize (bytes: Uint8Array): void {
  if (bytes.length < PCP_HEADER_SIZE) {
    throw malformed(`${bytes.length}-byte message is shorter than the ${PCP_HEADER_SIZE}-byte header`)
  }
  if (bytes.length % 4 !== 0) {
    throw malformed(`${bytes.length}-byte message is not a multiple of 4 bytes`)
  }
}

function checkMaximumSize (bytes: Uint8Array): void {
  if (bytes.length > PCP_MAX_MESSAGE_SIZE) {
    throw malformed(`${bytes.length}-byte message is longer than ${PCP_MAX_MESSAGE_SIZE} bytes`)
  }
}

function malformed (reason: string): MalformedMessageError {
  return new MalformedMessageError('pcp', reason)
}
