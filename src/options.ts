import { isIP, sameAddress } from './net/ip-address.js'
import {
  CACHE_TIME,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_DISCOVERY_TIMEOUT,
  DEFAULT_PREFERENCE_WINDOW,
  DEFAULT_REQUEST_TIMEOUT,
  MAPPING_DURATION
} from './constants.js'
import type { TransportProtocol } from './core/gateway-client.js'
import { InvalidArgumentError, type WireProtocol } from './errors.js'

/** Protocols discovery can probe, in order of preference. */
export const DISCOVERY_PROTOCOLS: readonly WireProtocol[] = ['pcp', 'nat-pmp', 'upnp']

/** Options of discoverNAT() and probeGateway(): every one has a default. */
export interface DiscoverOptions {
  /** Aborts discovery; it then rejects with AbortError. */
  signal?: AbortSignal
  /** Milliseconds to wait for any gateway before rejecting with NoNATFoundError. Default 2 500. */
  timeout?: number
  /** The gateway's address. Default: the next hop of the host's default route. */
  gateway?: string
  /**
   * Which address family this NAT serves. 'IPv6' finds the IPv6 default gateway and opens inbound
   * pinholes to this host's own global address (no translation); run one NAT per family, or use
   * mapEveryFamily(). NAT-PMP is IPv4-only and is skipped for IPv6. Default 'IPv4'.
   */
  family?: 'IPv4' | 'IPv6'
  /**
   * IPv6 only: allow a temporary (privacy, RFC 8981) source address when no stable global one
   * exists. Default false: a pinhole to an address that rotates away would soon be useless.
   */
  allowTemporaryAddress?: boolean
  /** Which protocols to probe. Default: all of them. */
  protocols?: WireProtocol[]
  /** Lifetime asked for each mapping, in ms; renewed every third of it. Default MAPPING_DURATION (60 000). */
  mappingDuration?: number
  /** How long an external address is trusted before the gateway is asked again, in ms. Default CACHE_TIME (15 000). */
  cacheTime?: number
  /** After a less preferred protocol answers, how long to wait for a preferred one, in ms. Default 50. */
  preferenceWindow?: number
  /** Bound on each request to the gateway in the background (renewals), in ms. Default 4 000. */
  requestTimeout?: number
  /** Bound on deleting all mappings in close(), in ms. Default 2 000. */
  closeTimeout?: number
  /** Requests in flight toward the gateway at once, across all mappings. Default 8. */
  maxConcurrentRequests?: number
  /**
   * How often the NAT re-reads the default route to notice a move to another network, in ms;
   * 0 turns it off. Default 5 000. Not used when `gateway` is given.
   */
  networkCheckInterval?: number
  /**
   * A file where the UPnP gateway that worked (its description URL and WAN service) is remembered
   * for ten minutes, so that the next process tries it at once instead of waiting for SSDP. Only
   * ever used for the same gateway and local address. Default: none (remembered in this process
   * only); the CLI uses $XDG_CACHE_HOME/natmapper/upnp-gateways.json (~/.cache/natmapper/...).
   */
  gatewayCacheFile?: string
  /**
   * Try the UPnP gateway that worked before (in this process, or from gatewayCacheFile) with one
   * GET beside the SSDP search. Default true; false always waits for SSDP (diagnostics, benchmarks).
   */
  rememberGateway?: boolean
  /**
   * The UPnP gateway's description URL (e.g. `http://192.168.1.1:5000/rootDesc.xml`), fetched at
   * once instead of waiting for an SSDP answer: for routers that ignore M-SEARCH. Its host must be
   * the gateway's address, as for SSDP answers; if it fails, the search runs as usual. Default: none.
   */
  upnpDescriptionUrl?: string
}

export interface ResolvedDiscoverOptions {
  signal: AbortSignal | undefined
  timeout: number
  gateway: string | undefined
  family: 'IPv4' | 'IPv6'
  allowTemporaryAddress: boolean
  protocols: WireProtocol[]
  mappingDuration: number
  cacheTime: number
  preferenceWindow: number
  requestTimeout: number
  closeTimeout: number
  maxConcurrentRequests: number
  networkCheckInterval: number
  gatewayCacheFile: string | undefined
  rememberGateway: boolean
  upnpDescriptionUrl: URL | undefined
}

function checkBoolean (value: boolean | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean, got ${JSON.stringify(value)}`)
  return value
}

function checkPath (value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '' || value.includes('\0')) throw new InvalidArgumentError(`${name} must be a file path, got ${JSON.stringify(value)}`)
  return value
}

/** Validates every option once, with a message naming the bad one, and fills in the defaults. */
export function resolveDiscoverOptions (options: DiscoverOptions = {}): ResolvedDiscoverOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object')
  const protocols = options.protocols ?? [...DISCOVERY_PROTOCOLS]
  if (!Array.isArray(protocols) || protocols.length === 0) {
    throw new InvalidArgumentError(`options.protocols must be a non-empty array of ${DISCOVERY_PROTOCOLS.join(', ')}`)
  }
  for (const protocol of protocols) {
    if (!DISCOVERY_PROTOCOLS.includes(protocol)) {
      throw new InvalidArgumentError(`options.protocols: unknown protocol ${JSON.stringify(protocol)} (expected ${DISCOVERY_PROTOCOLS.join(', ')})`)
    }
  }
  if (options.gateway !== undefined && (typeof options.gateway !== 'string' || isIP(options.gateway) === 0)) {
    throw new InvalidArgumentError(`options.gateway must be an IP address, got ${JSON.stringify(options.gateway)}`)
  }
  // An IPv6 gateway given without a family means IPv6.
  const family = options.family ?? (typeof options.gateway === 'string' && isIP(options.gateway) === 6 ? 'IPv6' : 'IPv4')
  if (family !== 'IPv4' && family !== 'IPv6') {
    throw new InvalidArgumentError(`options.family must be 'IPv4' or 'IPv6', got ${JSON.stringify(family)}`)
  }
  if (options.gateway !== undefined && isIP(options.gateway) !== (family === 'IPv6' ? 6 : 4)) {
    throw new InvalidArgumentError(`options.gateway must be an ${family} address when options.family is ${family}, got ${JSON.stringify(options.gateway)}`)
  }
  if (options.allowTemporaryAddress !== undefined && typeof options.allowTemporaryAddress !== 'boolean') {
    throw new InvalidArgumentError('options.allowTemporaryAddress must be a boolean')
  }
  return {
    signal: checkSignal(options.signal, 'options.signal'),
    family,
    allowTemporaryAddress: options.allowTemporaryAddress ?? false,
    timeout: checkMilliseconds(options.timeout, 'options.timeout', DEFAULT_DISCOVERY_TIMEOUT, 1),
    gateway: options.gateway,
    protocols: [...new Set(protocols)],
    // Lifetimes go on the wire in whole seconds and a mapping is renewed at a third of its
    // lifetime, so anything under 3 s cannot be honoured.
    mappingDuration: checkMilliseconds(options.mappingDuration, 'options.mappingDuration', MAPPING_DURATION, 3_000, 604_800_000),
    cacheTime: checkMilliseconds(options.cacheTime, 'options.cacheTime', CACHE_TIME, 0),
    preferenceWindow: checkMilliseconds(options.preferenceWindow, 'options.preferenceWindow', DEFAULT_PREFERENCE_WINDOW, 0),
    requestTimeout: checkMilliseconds(options.requestTimeout, 'options.requestTimeout', DEFAULT_REQUEST_TIMEOUT, 1),
    closeTimeout: checkMilliseconds(options.closeTimeout, 'options.closeTimeout', DEFAULT_CLOSE_TIMEOUT, 1),
    maxConcurrentRequests: checkInteger(options.maxConcurrentRequests, 'options.maxConcurrentRequests', 8, 1, 1024),
    networkCheckInterval: checkMilliseconds(options.networkCheckInterval, 'options.networkCheckInterval', 5_000, 0),
    gatewayCacheFile: checkPath(options.gatewayCacheFile, 'options.gatewayCacheFile'),
    rememberGateway: checkBoolean(options.rememberGateway, 'options.rememberGateway', true),
    upnpDescriptionUrl: checkDescriptionUrl(options.upnpDescriptionUrl, options.gateway)
  }
}

/**
 * An http URL whose host is an IP address (a name would have to be resolved, and could name any
 * host) and, when the gateway is given, that gateway: only the gateway is trusted.
 */
function checkDescriptionUrl (value: unknown, gateway: string | undefined): URL | undefined {
  if (value === undefined) return undefined
  const name = 'options.upnpDescriptionUrl'
  let url: URL
  try {
    if (typeof value !== 'string') throw new TypeError('not a string')
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError(`${name} must be an http URL, got ${JSON.stringify(value)}`)
  }
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (url.protocol !== 'http:' || url.username !== '' || url.password !== '' || isIP(host) === 0) {
    throw new InvalidArgumentError(`${name} must be an http URL naming the gateway by its IP address, got ${JSON.stringify(value)}`)
  }
  if (gateway !== undefined && isIP(gateway) === isIP(host) && !sameAddress(host, gateway)) {
    throw new InvalidArgumentError(`${name} names ${host}, not the gateway ${gateway}: only the gateway's own description is fetched`)
  }
  return url
}

/** Options of NAT.newMapping(). */
export interface MappingOptions {
  /** The external port to ask for. Default: the internal port. The gateway may grant another. */
  externalPort?: number
  /** A label shown in the router's mapping table (UPnP). Default "natmapper". */
  description?: string
  /** Aborts the first attempt; newMapping then rejects with AbortError and nothing is kept. */
  signal?: AbortSignal
  /** Bound on the first attempt, in ms; when it runs out newMapping still resolves and retries later. */
  timeout?: number
}

export interface ResolvedMappingOptions {
  protocol: TransportProtocol
  internalPort: number
  externalPort: number
  description: string
  signal: AbortSignal | undefined
  timeout: number | undefined
}

const MAX_DESCRIPTION_LENGTH = 256

export function resolveMappingOptions (protocol: unknown, internalPort: unknown, options: MappingOptions = {}): ResolvedMappingOptions {
  if (protocol !== 'tcp' && protocol !== 'udp') throw new InvalidArgumentError(`protocol must be 'tcp' or 'udp', got ${JSON.stringify(protocol)}`)
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object')
  const port = checkInteger(internalPort, 'internalPort', undefined, 1, 65_535)
  const description = options.description ?? 'natmapper'
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION_LENGTH || [...description].some((char) => char.charCodeAt(0) < 0x20)) {
    throw new InvalidArgumentError(`options.description must be a string of at most ${MAX_DESCRIPTION_LENGTH} printable characters`)
  }
  return {
    protocol,
    internalPort: port,
    externalPort: checkInteger(options.externalPort, 'options.externalPort', port, 1, 65_535),
    description,
    signal: checkSignal(options.signal, 'options.signal'),
    timeout: options.timeout === undefined ? undefined : checkMilliseconds(options.timeout, 'options.timeout', 0, 1)
  }
}

function checkMilliseconds (value: unknown, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be a number of milliseconds from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

function checkInteger (value: unknown, name: string, fallback: number | undefined, min: number, max: number): number {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

function checkSignal (value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (!(value instanceof AbortSignal)) throw new InvalidArgumentError(`${name} must be an AbortSignal`)
  return value
}
