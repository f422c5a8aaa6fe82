/**
 * SOAP codec for the WANIPConnection / WANPPPConnection actions we use (UDA 1.1 §3.2, IGD
 * WANIPConnection:2 §2.4). Requests are built with every argument XML-escaped, in the order the
 * service description lists them (some routers read arguments by position). Responses are read
 * by local name, whatever namespace prefixes the router chose; a fault becomes a
 * GatewayResultError carrying the UPnP error code and its name.
 */
import { isIP } from '../net/ip-address.js'
import { GatewayResultError, MalformedMessageError } from '../errors.js'
import { childNamed, childText, escapeXml, parseXml, type XmlElement } from './xml.js'

export type SoapArgument = readonly [name: string, value: string]

export interface SoapRequest {
  action: string
  arguments: readonly SoapArgument[]
}

/** The transport protocol as UPnP spells it; upper case, as some routers compare literally (tailscale/tailscale#7377). */
export type UpnpProtocol = 'TCP' | 'UDP'

export interface PortMappingArguments {
  /** '' for any remote host (the only value many gateways accept, 726). */
  remoteHost: string
  externalPort: number
  protocol: UpnpProtocol
  internalPort: number
  internalClient: string
  description: string
  /** Seconds; 0 asks for a permanent (static) mapping. */
  leaseDuration: number
}

export interface PortMappingKey {
  remoteHost: string
  externalPort: number
  protocol: UpnpProtocol
}

/** A port mapping as the gateway reports it (GetSpecificPortMappingEntry / GetGenericPortMappingEntry). */
export interface PortMappingEntry {
  remoteHost: string
  /** Only GetGenericPortMappingEntry reports the key fields. */
  externalPort: number | undefined
  protocol: UpnpProtocol | undefined
  internalPort: number
  internalClient: string
  enabled: boolean
  description: string
  leaseDuration: number
}

export interface StatusInfo {
  /** 'Connected', 'Disconnected', 'Connecting', ... (WANIPConnection §2.2.4). */
  connectionStatus: string
  lastConnectionError: string
  uptimeSeconds: number | undefined
}

/**
 * UPnP error codes and their names: UDA 1.1 §3.2.2 (4xx, 6xx) and WANIPConnection:2 §2.4
 * (7xx). Codes not listed keep the router's errorDescription as their name.
 */
export const UPNP_ERROR_NAMES: ReadonlyMap<number, string> = new Map([
  [401, 'InvalidAction'],
  [402, 'InvalidArgs'],
  [501, 'ActionFailed'],
  [600, 'ArgumentValueInvalid'],
  [601, 'ArgumentValueOutOfRange'],
  [602, 'OptionalActionNotImplemented'],
  [603, 'OutOfMemory'],
  [604, 'HumanInterventionRequired'],
  [605, 'StringArgumentTooLong'],
  [606, 'ActionNotAuthorized'],
  [607, 'SignatureFailure'],
  [608, 'SignatureMissing'],
  [609, 'NotEncrypted'],
  [610, 'InvalidSequence'],
  [611, 'InvalidControlURL'],
  [612, 'NoSuchSession'],
  // WANIPv6FirewallControl:1 §2.5 (701-709; miniupnpd 2.3.1 uses these numbers and names).
  [701, 'PinholeSpaceExhausted'],
  [702, 'FirewallDisabled'],
  [703, 'InboundPinholeNotAllowed'],
  [704, 'NoSuchEntry'],
  [705, 'ProtocolNotSupported'],
  [706, 'InternalPortWildcardingNotAllowed'],
  [707, 'ProtocolWildcardingNotAllowed'],
  [708, 'WildCardNotPermittedInSrcIP'],
  [709, 'NoPacketSent'],
  [713, 'SpecifiedArrayIndexInvalid'],
  [714, 'NoSuchEntryInArray'],
  [715, 'WildCardNotPermittedInSrcIP'],
  [716, 'WildCardNotPermittedInExtPort'],
  [718, 'ConflictInMappingEntry'],
  [724, 'SamePortValuesRequired'],
  [725, 'OnlyPermanentLeasesSupported'],
  [726, 'RemoteHostOnlySupportsWildcard'],
  [727, 'ExternalPortOnlySupportsWildcard'],
  [728, 'NoPortMapsAvailable'],
  [729, 'ConflictWithOtherMechanisms'],
  [730, 'PortMappingNotFound'],
  [731, 'ReadOnly'],
  [732, 'WildCardNotPermittedInIntPort'],
  [733, 'InconsistentParameters']
])

/** Named codes the client branches on. */
export const UpnpErrorCode = {
  InvalidArgs: 402,
  ActionFailed: 501,
  ActionNotAuthorized: 606,
  SpecifiedArrayIndexInvalid: 713,
  NoSuchEntryInArray: 714,
  ConflictInMappingEntry: 718,
  SamePortValuesRequired: 724,
  OnlyPermanentLeasesSupported: 725,
  NoPortMapsAvailable: 728,
  ConflictWithOtherMechanisms: 729,
  PinholeSpaceExhausted: 701,
  FirewallDisabled: 702,
  InboundPinholeNotAllowed: 703,
  NoSuchEntry: 704
} as const

const SOAP_ENVELOPE_NS = 'http://schemas.xmlsoap.org/soap/envelope/'
const SOAP_ENCODING = 'http://schemas.xmlsoap.org/soap/encoding/'

/**
 * The request body. The `s:`/`u:` prefixes and the single-line layout follow miniupnpc, whose
 * requests every router in the field has seen; a few parse them with string matching.
 */
export function encodeSoapRequest (serviceType: string, request: SoapRequest): string {
  const args = request.arguments.map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`).join('')
  return '<?xml version="1.0"?>\r\n' +
    `<s:Envelope xmlns:s="${SOAP_ENVELOPE_NS}" s:encodingStyle="${SOAP_ENCODING}">` +
    `<s:Body><u:${request.action} xmlns:u="${escapeXml(serviceType)}">${args}</u:${request.action}></s:Body>` +
    '</s:Envelope>\r\n'
}

/** The SOAPAction header value (UDA 1.1 §3.2.1), quoted as the spec and miniupnpd require. */
export function soapActionHeader (serviceType: string, action: string): string {
  return `"${serviceType}#${action}"`
}

/** Builders for the actions we send, arguments in the order of the service description. */
export const SoapActions = {
  addPortMapping (mapping: PortMappingArguments): SoapRequest {
    return { action: 'AddPortMapping', arguments: portMappingArguments(mapping) }
  },
  /** IGDv2 only: the gateway picks a free external port near the one suggested. */
  addAnyPortMapping (mapping: PortMappingArguments): SoapRequest {
    return { action: 'AddAnyPortMapping', arguments: portMappingArguments(mapping) }
  },
  deletePortMapping (key: PortMappingKey): SoapRequest {
    return { action: 'DeletePortMapping', arguments: keyArguments(key) }
  },
  getSpecificPortMappingEntry (key: PortMappingKey): SoapRequest {
    return { action: 'GetSpecificPortMappingEntry', arguments: keyArguments(key) }
  },
  getGenericPortMappingEntry (index: number): SoapRequest {
    return { action: 'GetGenericPortMappingEntry', arguments: [['NewPortMappingIndex', String(index)]] }
  },
  getExternalIPAddress (): SoapRequest {
    return { action: 'GetExternalIPAddress', arguments: [] }
  },
  getStatusInfo (): SoapRequest {
    return { action: 'GetStatusInfo', arguments: [] }
  },
  // WANIPv6FirewallControl:1 (IGDv2): inbound pinholes, no translation.
  getFirewallStatus (): SoapRequest {
    return { action: 'GetFirewallStatus', arguments: [] }
  },
  /** RemoteHost '' and RemotePort 0 are the wildcards: any peer may connect. */
  addPinhole (pinhole: PinholeArguments): SoapRequest {
    return {
      action: 'AddPinhole',
      arguments: [
        ['RemoteHost', pinhole.remoteHost ?? ''],
        ['RemotePort', String(pinhole.remotePort ?? 0)],
        ['InternalClient', pinhole.internalClient],
        ['InternalPort', String(pinhole.internalPort)],
        ['Protocol', String(PINHOLE_PROTOCOL_NUMBER[pinhole.protocol])],
        ['LeaseTime', String(pinhole.leaseTime)]
      ]
    }
  },
  deletePinhole (uniqueId: number): SoapRequest {
    return { action: 'DeletePinhole', arguments: [['UniqueID', String(uniqueId)]] }
  }
}

/** IANA protocol numbers, as WANIPv6FirewallControl's Protocol argument carries them. */
const PINHOLE_PROTOCOL_NUMBER = { TCP: 6, UDP: 17 } as const

export interface PinholeArguments {
  /** '' (the default) for any remote host. */
  remoteHost?: string
  /** 0 (the default) for any remote port. */
  remotePort?: number
  internalClient: string
  internalPort: number
  protocol: UpnpProtocol
  /** Seconds, 1 to 86 400 (WANIPv6FirewallControl:1 §2.3.x). */
  leaseTime: number
}

export interface FirewallStatus {
  firewallEnabled: boolean
  inboundPinholeAllowed: boolean
}

function keyArguments (key: PortMappingKey): SoapArgument[] {
  return [
    ['NewRemoteHost', key.remoteHost],
    ['NewExternalPort', String(key.externalPort)],
    ['NewProtocol', key.protocol]
  ]
}

function portMappingArguments (mapping: PortMappingArguments): SoapArgument[] {
  return [
    ...keyArguments(mapping),
    ['NewInternalPort', String(mapping.internalPort)],
    ['NewInternalClient', mapping.internalClient],
    ['NewEnabled', '1'],
    ['NewPortMappingDescription', mapping.description],
    ['NewLeaseDuration', String(mapping.leaseDuration)]
  ]
}

/**
 * Reads a SOAP response body. Returns the out arguments of `<action>Response` by name; throws
 * GatewayResultError for a UPnP fault and MalformedMessageError for anything else.
 */
export function decodeSoapResponse (text: string, action: string): Map<string, string> {
  const envelope = parseXml(text, `${action} response`)
  if (envelope.name !== 'Envelope') throw malformed(action, `root element is <${envelope.name}>, not <Envelope>`)
  const body = childNamed(envelope, 'Body')
  const payload = body?.children[0]
  if (payload === undefined) throw malformed(action, 'no SOAP Body content')
  if (payload.name === 'Fault') throw decodeFault(payload, action)
  if (payload.name.toLowerCase() !== `${action}Response`.toLowerCase()) {
    throw malformed(action, `expected <${action}Response>, got <${payload.name}>`)
  }
  const values = new Map<string, string>()
  for (const argument of payload.children) {
    if (!values.has(argument.name)) values.set(argument.name, argument.text.trim())
  }
  return values
}

/** UDA 1.1 §3.2.2: Fault/detail/UPnPError/{errorCode, errorDescription}. */
function decodeFault (fault: XmlElement, action: string): Error {
  const upnpError = childNamed(childNamed(fault, 'detail') ?? fault, 'UPnPError')
  const codeText = upnpError === undefined ? undefined : childText(upnpError, 'errorCode')
  if (codeText === undefined || !/^\d{1,4}$/.test(codeText)) {
    const faultString = (childText(fault, 'faultstring') ?? '').slice(0, 80)
    return malformed(action, `SOAP fault without a UPnP error code${faultString === '' ? '' : ` (${JSON.stringify(faultString)})`}`)
  }
  const code = Number(codeText)
  const description = sanitize(upnpError === undefined ? undefined : childText(upnpError, 'errorDescription'))
  const name = UPNP_ERROR_NAMES.get(code) ?? (description === '' ? 'UnknownError' : description)
  return new GatewayResultError('upnp', code, name, description === '' || description === name ? action : `${action}: ${description}`)
}

/** A router's free text, shortened and stripped of control characters before it reaches a message. */
function sanitize (text: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  return (text ?? '').replace(/[\u0000-\u001F\u007F]/g, ' ').trim().slice(0, 80)
}

/** GetExternalIPAddress → NewExternalIPAddress, which must be an IP address that is not unspecified. */
/** GetFirewallStatus: two booleans ("0"/"1"). */
export function decodeFirewallStatus (values: ReadonlyMap<string, string>): FirewallStatus {
  return {
    firewallEnabled: decodeBoolean(values.get('FirewallEnabled'), 'GetFirewallStatus', 'FirewallEnabled'),
    inboundPinholeAllowed: decodeBoolean(values.get('InboundPinholeAllowed'), 'GetFirewallStatus', 'InboundPinholeAllowed')
  }
}

/** AddPinhole: the UniqueID (ui2) that DeletePinhole takes. */
export function decodePinholeId (values: ReadonlyMap<string, string>): number {
  const text = values.get('UniqueID')
  const id = Number(text)
  if (text === undefined || !/^\d+$/.test(text) || id > 0xffff) throw malformed('AddPinhole', `bad UniqueID ${JSON.stringify(sanitize(text))}`)
  return id
}

function decodeBoolean (text: string | undefined, action: string, field: string): boolean {
  const value = text?.trim().toLowerCase()
  if (value === '1' || value === 'true' || value === 'yes') return true
  if (value === '0' || value === 'false' || value === 'no') return false
  throw malformed(action, `bad ${field} ${JSON.stringify(sanitize(text))}`)
}

export function decodeExternalIPAddress (values: ReadonlyMap<string, string>): string {
  const address = (values.get('NewExternalIPAddress') ?? '').trim()
  // Routers without a usable WAN address answer '' or 0.0.0.0 (a FRITZ!Box with its link down,
  // gethomepage/homepage#4778; miniupnpd when its WAN address is private or shared). That is an
  // answer, "unspecified", which the NAT reports as not publicly routable; it is not garbage.
  if (address === '') return '0.0.0.0'
  if (isIP(address) === 0) throw malformed('GetExternalIPAddress', `NewExternalIPAddress is not an IP address: ${JSON.stringify(address.slice(0, 60))}`)
  return address
}

/** AddAnyPortMapping → NewReservedPort: the external port actually granted. */
export function decodeReservedPort (values: ReadonlyMap<string, string>): number {
  return decodePort(values.get('NewReservedPort'), 'AddAnyPortMapping', 'NewReservedPort')
}

export function decodeStatusInfo (values: ReadonlyMap<string, string>): StatusInfo {
  const uptime = values.get('NewUptime') ?? ''
  return {
    connectionStatus: values.get('NewConnectionStatus') ?? '',
    lastConnectionError: values.get('NewLastConnectionError') ?? '',
    uptimeSeconds: /^\d{1,10}$/.test(uptime) ? Number(uptime) : undefined
  }
}

export function decodePortMappingEntry (values: ReadonlyMap<string, string>, action: string): PortMappingEntry {
  const externalPort = values.get('NewExternalPort')
  const protocol = values.get('NewProtocol')?.toUpperCase()
  const lease = values.get('NewLeaseDuration') ?? '0'
  if (!/^\d{1,10}$/.test(lease)) throw malformed(action, `bad NewLeaseDuration ${JSON.stringify(lease.slice(0, 20))}`)
  return {
    remoteHost: values.get('NewRemoteHost') ?? '',
    externalPort: externalPort === undefined ? undefined : decodePort(externalPort, action, 'NewExternalPort'),
    protocol: protocol === 'TCP' || protocol === 'UDP' ? protocol : undefined,
    internalPort: decodePort(values.get('NewInternalPort'), action, 'NewInternalPort'),
    internalClient: values.get('NewInternalClient') ?? '',
    enabled: values.get('NewEnabled') === '1' || values.get('NewEnabled')?.toLowerCase() === 'true',
    description: values.get('NewPortMappingDescription') ?? '',
    leaseDuration: Number(lease)
  }
}

function decodePort (text: string | undefined, action: string, field: string): number {
  const port = /^\d{1,5}$/.test(text ?? '') ? Number(text) : NaN
  if (!(port >= 1 && port <= 65_535)) throw malformed(action, `${field} is not a port: ${JSON.stringify((text ?? '').slice(0, 20))}`)
  return port
}

function malformed (action: string, message: string): MalformedMessageError {
  return new MalformedMessageError('upnp', `SOAP ${action}: ${message}`)
}
