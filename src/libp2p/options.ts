import { addressScope, InvalidArgumentError, type WireProtocol } from '../index.js'

/** Options of the natMapper() service. Where @libp2p/upnp-nat has the same knob, its name is noted. */
export interface NatMapperInit {
  /**
   * The label each mapping gets in the router's table (UPnP). upnp-nat: `portMappingDescription`.
   * Default: `<node name>@<node version> <peer id>`, as upnp-nat.
   */
  description?: string
  /**
   * Lifetime asked for each mapping, in ms; renewed every third of it. upnp-nat: `portMappingTTL`
   * (its mappings are renewed `portMappingRefreshThreshold` before they run out). Default 60 000.
   */
  mappingDuration?: number
  /**
   * Trust each mapped address at once instead of waiting for `@libp2p/autonat` to verify it (as
   * upnp-nat). Without it the node needs the autonat service, which this service then depends on.
   * Default false.
   */
  autoConfirmAddress?: boolean
  /** The IPv4 gateway's address. Default: the next hop of the default route. upnp-nat: `gateways` (descriptor URLs). */
  gateway?: string
  /** The IPv6 gateway's address. Default: the next hop of the IPv6 default route. */
  gateway6?: string
  /** Which protocols to try, in order of preference. Default: PCP, NAT-PMP and UPnP. */
  protocols?: WireProtocol[]
  /** Which families to make reachable: IPv4 (port mappings), IPv6 (pinholes) or both. Default 'both'. */
  family?: 'IPv4' | 'IPv6' | 'both'
  /** How long discovery waits for a gateway, in ms. Default 2 500. */
  discoveryTimeout?: number
  /**
   * After discovery found no gateway, how long until it tries again, in ms; it doubles up to
   * ten times this. Default 10 000.
   */
  rediscoveryInterval?: number
}

export interface ResolvedNatMapperInit {
  description: string | undefined
  mappingDuration: number | undefined
  autoConfirmAddress: boolean
  gateways: Partial<Record<'IPv4' | 'IPv6', string>>
  protocols: WireProtocol[] | undefined
  families: Array<'IPv4' | 'IPv6'>
  discoveryTimeout: number | undefined
  rediscoveryInterval: number
}

const PROTOCOLS: readonly WireProtocol[] = ['pcp', 'nat-pmp', 'upnp']
const FAMILIES = { IPv4: ['IPv4'], IPv6: ['IPv6'], both: ['IPv4', 'IPv6'] } as const

/**
 * Checks every option once, with a message naming the bad one, so a bad value fails at
 * createLibp2p() instead of later in the background. discoverNAT() and newMapping() check the
 * values passed on to them again, in detail.
 */
export function resolveNatMapperInit (init: NatMapperInit = {}): ResolvedNatMapperInit {
  if (typeof init !== 'object' || init === null) throw new InvalidArgumentError('natMapper init must be an object')
  const family = init.family ?? 'both'
  if (!Object.hasOwn(FAMILIES, family)) throw new InvalidArgumentError(`init.family must be 'IPv4', 'IPv6' or 'both', got ${JSON.stringify(family)}`)
  if (init.autoConfirmAddress !== undefined && typeof init.autoConfirmAddress !== 'boolean') {
    throw new InvalidArgumentError('init.autoConfirmAddress must be a boolean')
  }
  const gateways: ResolvedNatMapperInit['gateways'] = {}
  for (const [name, value, wanted] of [['gateway', init.gateway, 'IPv4'], ['gateway6', init.gateway6, 'IPv6']] as const) {
    if (value === undefined) continue
    if (typeof value !== 'string' || !isAddressOf(value, wanted)) throw new InvalidArgumentError(`init.${name} must be an ${wanted} address, got ${JSON.stringify(value)}`)
    gateways[wanted] = value
  }
  if (init.description !== undefined && typeof init.description !== 'string') throw new InvalidArgumentError('init.description must be a string')
  if (init.protocols !== undefined && (!Array.isArray(init.protocols) || init.protocols.some((protocol) => !PROTOCOLS.includes(protocol)))) {
    throw new InvalidArgumentError(`init.protocols must be an array of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(init.protocols)}`)
  }
  checkMilliseconds(init.mappingDuration, 'init.mappingDuration', 3_000)
  checkMilliseconds(init.discoveryTimeout, 'init.discoveryTimeout', 1)
  const rediscoveryInterval = init.rediscoveryInterval ?? 10_000
  checkMilliseconds(rediscoveryInterval, 'init.rediscoveryInterval', 100)
  return {
    description: init.description,
    mappingDuration: init.mappingDuration,
    autoConfirmAddress: init.autoConfirmAddress ?? false,
    gateways,
    protocols: init.protocols,
    families: [...FAMILIES[family]],
    discoveryTimeout: init.discoveryTimeout,
    rediscoveryInterval
  }
}

function isAddressOf (value: string, family: 'IPv4' | 'IPv6'): boolean {
  try {
    addressScope(value)
  } catch {
    return false
  }
  return family === 'IPv6' ? value.includes(':') : !value.includes(':')
}

function checkMilliseconds (value: unknown, name: string, min: number): void {
  if (value !== undefined && (typeof value !== 'number' || !(value >= min) || !Number.isFinite(value))) {
    throw new InvalidArgumentError(`${name} must be a number of milliseconds, at least ${min}, got ${String(value)}`)
  }
}
