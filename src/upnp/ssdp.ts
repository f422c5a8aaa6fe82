/**
 * SSDP wire codec (UPnP Device Architecture 1.1 §1.2, §1.3): M-SEARCH requests, their unicast
 * answers, and the NOTIFYs a device multicasts. Pure functions: no sockets, no clock. Messages are
 * read tolerantly (any header-name case, any spacing, CRLF or bare LF, missing optional headers)
 * but within fixed bounds, and anything we cannot use is a MalformedMessageError, never another
 * exception.
 */
import { isIP } from '../net/ip-address.js'
import { MalformedMessageError } from '../errors.js'
import {
  MAX_SSDP_DATAGRAM_BYTES,
  MAX_SSDP_HEADERS,
  MAX_SSDP_LINE_LENGTH,
  SSDP_MX_SECONDS
} from './constants.js'

export interface SearchRequest {
  /** The ST header: a device or service type URN. */
  searchTarget: string
  /** Where the datagram goes: the multicast group or the device, as address (IPv6 unbracketed) and port. */
  address: string
  port: number
  /** MX: how long, in seconds, a device may wait before answering (UDA 1.1 §1.3.2: 1 to 5). */
  mx?: number
}

/** A device's answer to an M-SEARCH (UDA 1.1 §1.3.3). */
export interface SearchResponse {
  /** LOCATION: where the device description is (validated: absolute http URL, no credentials). */
  location: URL
  /** ST, as the device echoed it, if present. */
  searchTarget?: string
  /** USN, the unique service name, if present. */
  usn?: string
  /** SERVER, the device's product tokens, if present. */
  server?: string
  /** CACHE-CONTROL max-age in seconds, if present and well formed. */
  maxAgeSeconds?: number
  /** BOOTID.UPNP.ORG, if present and well formed (UDA 1.1): the device's boot instance. */
  bootId?: number
}

/**
 * Builds an M-SEARCH datagram. Header names are upper case and lines end in CRLF because some
 * devices match them literally (miniupnpd splits on "\r\n").
 */
export function encodeSearchRequest (request: SearchRequest): Uint8Array {
  const host = isIP(request.address) === 6 ? `[${request.address}]:${request.port}` : `${request.address}:${request.port}`
  const text = 'M-SEARCH * HTTP/1.1\r\n' +
    `HOST: ${host}\r\n` +
    'MAN: "ssdp:discover"\r\n' +
    `MX: ${request.mx ?? SSDP_MX_SECONDS}\r\n` +
    `ST: ${request.searchTarget}\r\n` +
    '\r\n'
  return Buffer.from(text, 'latin1')
}

/**
 * What a device multicasts on its own (UDA 1.1 §1.2): `alive` when it joins the network or
 * re-announces itself, `byebye` when it leaves (a clean shutdown), `update` when its BOOTID is
 * about to change. A router's restart shows as byebye, then alive with a new BOOTID.
 */
export interface Notification {
  /** NTS: ssdp:alive, ssdp:byebye or ssdp:update. */
  kind: 'alive' | 'byebye' | 'update'
  /** NT: the device or service type announced. */
  notificationType: string
  /** USN, if present. */
  usn?: string
  /** BOOTID.UPNP.ORG (UDA 1.1 §1.2.2): changes whenever the device reboots. */
  bootId?: number
  /** LOCATION, for alive and update (validated like a search answer's). */
  location?: URL
}

/** Parses one SSDP datagram as a search answer, or throws MalformedMessageError. */
export function decodeSearchResponse (datagram: Uint8Array): SearchResponse {
  const { startLine, headers } = readMessage(datagram)
  const status = /^HTTP\/1\.\d[ \t]+(\d{3})(?:[ \t].*)?$/i.exec(startLine)
  if (status === null) throw malformed(`not a search answer: ${JSON.stringify(startLine.slice(0, 40))}`)
  if (status[1] !== '200') throw malformed(`search answer with status ${status[1]}`)

  const response: SearchResponse = { location: parseLocation(headers.get('location')) }
  const searchTarget = headers.get('st')
  if (searchTarget !== undefined && searchTarget !== '') response.searchTarget = searchTarget
  const usn = headers.get('usn')
  if (usn !== undefined && usn !== '') response.usn = usn
  const server = headers.get('server')
  if (server !== undefined && server !== '') response.server = server
  const maxAge = /(?:^|[,;\s])max-age\s*=\s*"?(\d{1,9})"?/i.exec(headers.get('cache-control') ?? '')
  if (maxAge?.[1] !== undefined) response.maxAgeSeconds = Number(maxAge[1])
  const bootId = parseBootId(headers.get('bootid.upnp.org'))
  if (bootId !== undefined) response.bootId = bootId
  return response
}

/** Parses one SSDP datagram as a NOTIFY (alive, byebye, update), or throws MalformedMessageError. */
export function decodeNotify (datagram: Uint8Array): Notification {
  const { startLine, headers } = readMessage(datagram)
  if (!/^NOTIFY[ \t]+\*[ \t]+HTTP\/1\.\d$/i.test(startLine)) throw malformed(`not a NOTIFY: ${JSON.stringify(startLine.slice(0, 40))}`)
  const nts = /^ssdp:(alive|byebye|update)$/i.exec(headers.get('nts') ?? '')
  if (nts?.[1] === undefined) throw malformed(`NOTIFY with NTS ${JSON.stringify((headers.get('nts') ?? '').slice(0, 40))}`)
  const notificationType = headers.get('nt') ?? ''
  if (notificationType === '') throw malformed('NOTIFY without NT')
  const notification: Notification = { kind: nts[1].toLowerCase() as Notification['kind'], notificationType }
  const usn = headers.get('usn')
  if (usn !== undefined && usn !== '') notification.usn = usn
  const bootId = parseBootId(headers.get('bootid.upnp.org'))
  if (bootId !== undefined) notification.bootId = bootId
  if (notification.kind !== 'byebye') notification.location = parseLocation(headers.get('location'))
  return notification
}

/** The start line and the headers (lower-case names, first occurrence wins) of one SSDP datagram. */
function readMessage (datagram: Uint8Array): { startLine: string, headers: Map<string, string> } {
  if (datagram.byteLength > MAX_SSDP_DATAGRAM_BYTES) {
    throw malformed(`datagram of ${datagram.byteLength} bytes exceeds ${MAX_SSDP_DATAGRAM_BYTES}`)
  }
  // latin1 maps every byte to one character, so odd bytes cannot make decoding fail.
  const text = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength).toString('latin1')
  const lines = text.split(/\r?\n/, MAX_SSDP_HEADERS + 2)
  const startLine = (lines[0] ?? '').trim()
  if (startLine.length > MAX_SSDP_LINE_LENGTH) throw malformed(`start line longer than ${MAX_SSDP_LINE_LENGTH} characters`)
  const headers = new Map<string, string>()
  let ended = false
  for (const line of lines.slice(1)) {
    if (line.trim() === '') { ended = true; break }
    if (line.length > MAX_SSDP_LINE_LENGTH) throw malformed(`header line longer than ${MAX_SSDP_LINE_LENGTH} characters`)
    const colon = line.indexOf(':')
    // A line without a colon is noise some stacks emit; it carries nothing we could use.
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    // The first occurrence wins: a repeated header cannot change what the device said first.
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim())
  }
  if (!ended && lines.length > MAX_SSDP_HEADERS + 1) throw malformed(`more than ${MAX_SSDP_HEADERS} header lines`)
  return { startLine, headers }
}

/** BOOTID.UPNP.ORG is a 31-bit non-negative integer (UDA 1.1 §1.2.2); anything else is ignored. */
function parseBootId (value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined
  const bootId = Number(value)
  return bootId <= 0x7fffffff ? bootId : undefined
}

function parseLocation (value: string | undefined): URL {
  if (value === undefined || value === '') throw malformed('search answer without LOCATION')
  let location: URL
  try {
    location = new URL(value)
  } catch (error) {
    throw new MalformedMessageError('upnp', `LOCATION is not a URL: ${JSON.stringify(value.slice(0, 80))}`, { cause: error })
  }
  // Descriptions are plain HTTP (UDA 1.1 §2.1); credentials in a LAN-announced URL are a trick, not a feature.
  if (location.protocol !== 'http:') throw malformed(`LOCATION scheme ${location.protocol} is not http:`)
  if (location.username !== '' || location.password !== '') throw malformed('LOCATION carries credentials')
  if (location.hostname === '') throw malformed('LOCATION has no host')
  return location
}

function malformed (message: string): MalformedMessageError {
  return new MalformedMessageError('upnp', `SSDP: ${message}`)
}
