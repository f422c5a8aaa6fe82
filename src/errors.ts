/**
 * Every error natmapper throws or rejects with is a `NatMapperError` with a stable string `code`.
 * Callers branch on `code` (or `instanceof`), never on the message.
 */

/** The wire protocols natmapper speaks. */
export type WireProtocol = 'pcp' | 'nat-pmp' | 'upnp'

/** The base of every error natmapper throws or rejects with. */
export class NatMapperError extends Error {
  /** Stable across versions, unlike the message: `ERR_NO_MAPPING`, `ERR_TIMEOUT`, ... */
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** An argument or option was out of range or of the wrong type. */
export class InvalidArgumentError extends NatMapperError {
  constructor (message: string) {
    super('ERR_INVALID_ARGUMENT', message)
  }
}

/** The mapping is not established (yet, or any more). */
export class NoMappingError extends NatMapperError {
  constructor (message = 'mapping not established', options?: { cause?: unknown }) {
    super('ERR_NO_MAPPING', message, options)
  }
}

/** Discovery found no usable gateway; `reasons` says why, per protocol. */
export class NoNATFoundError extends NatMapperError {
  /** Each protocol's failure: PortUnreachableError (refused), TimeoutError (silence), ... */
  readonly reasons: Partial<Record<WireProtocol, Error>>

  constructor (reasons: Partial<Record<WireProtocol, Error>>, message?: string) {
    const summary = Object.entries(reasons)
      .map(([protocol, error]) => `${protocol}: ${error.message}`)
      .join('; ')
    super('ERR_NO_NAT_FOUND', message ?? `no NAT gateway found${summary === '' ? '' : ` (${summary})`}`)
    this.reasons = reasons
  }
}

/** No default gateway could be found for the host. */
export class NoDefaultGatewayError extends NatMapperError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_NO_DEFAULT_GATEWAY', message, options)
  }
}

/**
 * The kernel sends Internet traffic over a link with no next hop (a point-to-point VPN interface
 * such as wg0 or tun0): there is no gateway to find, only one to be told (`options.gateway`, the
 * CLI's `--gateway`), such as a VPN's NAT-PMP server.
 */
export class NoNextHopError extends NatMapperError {
  /** The address family whose route it is. */
  readonly family: 'IPv4' | 'IPv6'
  /** The interface the kernel's route leaves by. */
  readonly interfaceName: string
  /** The main table's default next hop, which the kernel does not use, when there is one. */
  readonly unusedGateway: string | undefined

  constructor (family: 'IPv4' | 'IPv6', interfaceName: string, unusedGateway?: string) {
    super('ERR_NO_NEXT_HOP', `the kernel routes ${family} Internet traffic through ${interfaceName}, a point-to-point link with no gateway to ask` +
      (unusedGateway === undefined ? '' : ` (not via ${unusedGateway}, the main table's default route)`) +
      ': give the gateway with --gateway (options.gateway), e.g. the VPN\'s NAT-PMP server')
    this.family = family
    this.interfaceName = interfaceName
    this.unusedGateway = unusedGateway
  }
}

/** The gateway answered with a protocol-level failure (a PCP/NAT-PMP result code, a UPnP fault). */
export class GatewayResultError extends NatMapperError {
  /** The protocol whose gateway answered. */
  readonly protocol: WireProtocol
  /** The protocol's own numeric result or fault code. */
  readonly resultCode: number
  /** The protocol's name for that code, e.g. `NOT_AUTHORIZED` or `ConflictInMappingEntry`. */
  readonly resultName: string

  constructor (protocol: WireProtocol, resultCode: number, resultName: string, detail?: string, options?: { cause?: unknown }) {
    super('ERR_GATEWAY_RESULT', `${protocol} gateway answered ${resultName} (${resultCode})${detail === undefined ? '' : `: ${detail}`}`, options)
    this.protocol = protocol
    this.resultCode = resultCode
    this.resultName = resultName
  }
}

/**
 * The gateway answered a mapping request with success but does not hold the mapping: asked right
 * after, it lists no such entry (a router whose table is full, weupnp #12). `message` says so.
 */
export class MappingNotHeldError extends NatMapperError {
  /** The protocol whose gateway claimed the mapping. */
  readonly protocol: WireProtocol

  constructor (protocol: WireProtocol, message: string, options?: { cause?: unknown }) {
    super('ERR_MAPPING_NOT_HELD', `${protocol}: ${message}`, options)
    this.protocol = protocol
  }
}

/** A message from the network could not be understood; it was rejected, not acted on. */
export class MalformedMessageError extends NatMapperError {
  /** The protocol the message claimed to be. */
  readonly protocol: WireProtocol

  constructor (protocol: WireProtocol, message: string, options?: { cause?: unknown }) {
    super('ERR_MALFORMED_MESSAGE', `${protocol}: ${message}`, options)
    this.protocol = protocol
  }
}

/** The gateway's host answered with ICMP port unreachable: nothing listens for that protocol. */
export class PortUnreachableError extends NatMapperError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_PORT_UNREACHABLE', message, options)
  }
}

/** The gateway does not speak this protocol version or does not support the operation. */
export class UnsupportedError extends NatMapperError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_UNSUPPORTED', message, options)
  }
}

/** A wait ran out of time. */
export class TimeoutError extends NatMapperError {
  constructor (message = 'timed out', options?: { cause?: unknown }) {
    super('ERR_TIMEOUT', message, options)
  }
}

/** The caller's AbortSignal fired. `cause` is the signal's reason. */
export class AbortError extends NatMapperError {
  constructor (message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('ERR_ABORTED', message, options)
  }
}

/** The NAT or mapping was closed. */
export class ClosedError extends NatMapperError {
  constructor (message = 'closed') {
    super('ERR_CLOSED', message)
  }
}

/** A socket or HTTP failure below the protocol (ECONNREFUSED, EHOSTUNREACH, ...). */
export class NetworkError extends NatMapperError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_NETWORK', message, options)
  }
}

/** An HTTP server (a UPnP gateway's description or control URL) answered with a non-2xx status. */
export class HttpStatusError extends NatMapperError {
  readonly statusCode: number

  constructor (statusCode: number, message: string, options?: { cause?: unknown }) {
    super('ERR_HTTP_STATUS', message, options)
    this.statusCode = statusCode
  }
}

/** The result codes with which a gateway refuses a mapping by policy (its permission rules). */
const REFUSAL_CODES: Readonly<Record<WireProtocol, readonly number[]>> = {
  // NOT_AUTHORIZED (RFC 6887 §7.4, RFC 6886 §3.5 "Not Authorized/Refused").
  pcp: [2],
  'nat-pmp': [2],
  // 606 ActionNotAuthorized; 718 ConflictInMappingEntry is what some routers (miniupnpd in secure
  // mode among them) answer instead when the rules forbid the mapping.
  upnp: [606, 718]
}

/** The lowest port the permission rules routers ship with let a LAN host map. */
export const LOWEST_COMMONLY_ALLOWED_PORT = 1_024

/**
 * A gateway's refusal of a mapping, with the reason spelled out. Below 1024: the permission rules
 * routers ship with (miniupnpd's sample config, OpenWrt, pfSense, OPNsense) allow only
 * `1024-65535` on both sides. A UPnP 606 for ports >= 1024 is a per-device permission: a
 * Fritz!Box answers 606 to every port until "Permit independent port sharing" is on for this
 * device (miniupnp #392, lontivero/Open.NAT#80). The protocol, code and name stay the gateway's
 * own; other errors are returned as they are.
 */
export function explainRefusal (error: unknown, internalPort: number, externalPort: number): unknown {
  if (!(error instanceof GatewayResultError) || !REFUSAL_CODES[error.protocol].includes(error.resultCode)) return error
  const low = [internalPort < LOWEST_COMMONLY_ALLOWED_PORT ? `internal port ${internalPort}` : undefined,
    externalPort > 0 && externalPort < LOWEST_COMMONLY_ALLOWED_PORT ? `external port ${externalPort}` : undefined].filter((part) => part !== undefined)
  if (low.length > 0) {
    return new GatewayResultError(error.protocol, error.resultCode, error.resultName,
      `the gateway refused ${low.join(' and ')}: routers' permission rules commonly allow only ports ${LOWEST_COMMONLY_ALLOWED_PORT}-65535 ` +
      `(miniupnpd's stock "allow 1024-65535 <LAN> 1024-65535"); map a port >= ${LOWEST_COMMONLY_ALLOWED_PORT}, or allow this one in the router's UPnP/NAT-PMP settings`,
      { cause: error })
  }
  if (error.protocol === 'upnp' && error.resultCode === UPNP_ACTION_NOT_AUTHORIZED) {
    const ports = externalPort > 0 && externalPort !== internalPort ? `internal port ${internalPort}, external port ${externalPort}` : `port ${internalPort}`
    return new GatewayResultError(error.protocol, error.resultCode, error.resultName,
      `the gateway refused ${ports}, which no common rule forbids: this host is not permitted to map ports. A Fritz!Box answers so to every ` +
      'port until "Permit independent port sharing" is enabled for this device (Internet > Permit Access > Port Sharing, the device\'s settings); ' +
      'on other routers, allow this host in the UPnP settings',
      { cause: error })
  }
  return error
}

/** UPnP 606 ActionNotAuthorized. */
const UPNP_ACTION_NOT_AUTHORIZED = 606
