import { NoDefaultGatewayError } from '../errors.js'
import { bestOf, parseBsdRouteGet, systemRouteSources as systemSources, windowsActiveRouteRows, withZone, type DefaultRoute, type RouteSources } from './default-gateway.js'
import { decodeIPv6Field, isIPv6 } from './ip-address.js'

/**
 * IPv6 counterparts of default-gateway.ts: the default route's next hop and the host's own stable
 * global address, which is what a pinhole opens to (no translation on IPv6).
 */

const MAX_TABLE_CHARS = 1_000_000

const RTF_UP = 0x1
const RTF_GATEWAY = 0x2

/** linux/if_addr.h: addresses that must not carry a long-lived pinhole. */
const IFA_F_TEMPORARY = 0x01
const IFA_F_DADFAILED = 0x08
const IFA_F_DEPRECATED = 0x20
const IFA_F_TENTATIVE = 0x40

/** /proc/net/if_inet6 scope values (IPV6_ADDR_SCOPE_*): 0 global, 0x20 link. */
const SCOPE_GLOBAL = 0x00

/** 32 hex digits (as /proc writes them, network order) → RFC 5952 text. */
function hexToIPv6 (hex: string): string | undefined {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return decodeIPv6Field(bytes)
}

/**
 * /proc/net/ipv6_route: "dest destlen src srclen nexthop metric refcnt use flags dev", all hex.
 * It lists the routes of every table (policy routing's too), without saying which.
 * A default route is ::/0 with RTF_GATEWAY. A link-local next hop (the usual case: routers
 * advertise from fe80::) only means something with its interface, so it gets a `%dev` zone.
 */
export function parseLinuxIPv6RouteTable (text: string): DefaultRoute[] {
  const routes: DefaultRoute[] = []
  for (const line of text.slice(0, MAX_TABLE_CHARS).split('\n')) {
    const [destination, destinationLength, , , nextHopHex, metricHex, , , flagsHex, interfaceName] = line.trim().split(/\s+/)
    if (interfaceName === undefined || interfaceName === 'lo') continue
    if (destination !== '0'.repeat(32) || destinationLength !== '00') continue
    const flags = Number.parseInt(flagsHex ?? '', 16)
    if ((flags & (RTF_UP | RTF_GATEWAY)) !== (RTF_UP | RTF_GATEWAY)) continue
    const nextHop = hexToIPv6(nextHopHex ?? '')
    if (nextHop === undefined || nextHop === '::') continue
    const gateway = nextHop.toLowerCase().startsWith('fe80:') ? `${nextHop}%${interfaceName}` : nextHop
    routes.push({ gateway, interfaceName, metric: Number.parseInt(metricHex ?? '0', 16) || 0 })
  }
  return routes
}

export interface InterfaceAddress6 {
  address: string
  interfaceName: string
  prefixLength: number
  /** A privacy (RFC 8981) address: fine for outgoing traffic, wrong for a long-lived pinhole. */
  temporary: boolean
  /** Not usable for a new mapping: deprecated, tentative, or failed duplicate address detection. */
  unusable: boolean
  global: boolean
}

/** /proc/net/if_inet6: "address ifindex prefixlen scope flags dev", all hex. */
export function parseLinuxIfInet6 (text: string): InterfaceAddress6[] {
  const addresses: InterfaceAddress6[] = []
  for (const line of text.slice(0, MAX_TABLE_CHARS).split('\n')) {
    const [hex, , prefixHex, scopeHex, flagsHex, interfaceName] = line.trim().split(/\s+/)
    if (interfaceName === undefined) continue
    const address = hexToIPv6(hex ?? '')
    const flags = Number.parseInt(flagsHex ?? '', 16)
    const scope = Number.parseInt(scopeHex ?? '', 16)
    if (address === undefined || Number.isNaN(flags) || Number.isNaN(scope)) continue
    addresses.push({
      address,
      interfaceName,
      prefixLength: Number.parseInt(prefixHex ?? '0', 16),
      temporary: (flags & IFA_F_TEMPORARY) !== 0,
      unusable: (flags & (IFA_F_DEPRECATED | IFA_F_TENTATIVE | IFA_F_DADFAILED)) !== 0,
      // fc00::/7 (ULA) has global scope in the kernel but is not reachable from the Internet.
      global: scope === SCOPE_GLOBAL && !/^f[cd]/i.test(address)
    })
  }
  return addresses
}

/**
 * The address a pinhole should open to: global, usable, on `interfaceName` when given, and stable
 * (not temporary) unless `allowTemporary`; stable addresses win over temporary ones. Never
 * link-local.
 */
export function chooseSourceAddress6 (addresses: InterfaceAddress6[], interfaceName: string | undefined, allowTemporary = false): string | undefined {
  const candidates = addresses.filter((a) => a.global && !a.unusable && (interfaceName === undefined || a.interfaceName === interfaceName) &&
    (allowTemporary || !a.temporary))
  return (candidates.find((a) => !a.temporary) ?? candidates[0])?.address
}

/** Finds the IPv6 default gateway, preferring the route with the lowest metric. */
export async function findDefaultGateway6 (sources: RouteSources = systemSources): Promise<DefaultRoute> {
  const best = bestOf(await readDefaultRoutes6(sources))
  if (best === undefined) throw new NoDefaultGatewayError(`no IPv6 default route on this host (${sources.platform})`)
  return best
}

/** Every IPv6 default route with a next hop (on Linux, of every routing table: see parseLinuxIPv6RouteTable). */
export async function readDefaultRoutes6 (sources: RouteSources = systemSources): Promise<DefaultRoute[]> {
  try {
    switch (sources.platform) {
      case 'linux':
      case 'android':
        return parseLinuxIPv6RouteTable(await sources.readFile('/proc/net/ipv6_route'))
      case 'darwin':
      case 'freebsd':
      case 'openbsd':
        return await readBsdDefaultRoutes6(sources)
      case 'win32':
        return parseWindowsRoutePrint6(await sources.run('route', ['print', '-6', '::/0']))
      default:
        throw new Error(`unsupported platform ${sources.platform}`)
    }
  } catch (error) {
    throw new NoDefaultGatewayError(`could not read the IPv6 route table on ${sources.platform}: ${(error as Error).message}`, { cause: error })
  }
}

/** The host's IPv6 addresses (Linux /proc/net/if_inet6), or undefined where they cannot be read. */
export async function readInterfaceAddresses6 (sources: RouteSources = systemSources): Promise<InterfaceAddress6[] | undefined> {
  if (sources.platform !== 'linux' && sources.platform !== 'android') return undefined
  try {
    return parseLinuxIfInet6(await sources.readFile('/proc/net/if_inet6'))
  } catch {
    return undefined
  }
}

/** The stable global address on `interfaceName` (Linux), or undefined where it cannot be read. */
export async function findSourceAddress6 (interfaceName: string | undefined, allowTemporary: boolean, sources: RouteSources = systemSources): Promise<string | undefined> {
  if (sources.platform !== 'linux' && sources.platform !== 'android') return undefined
  let text: string
  try {
    text = await sources.readFile('/proc/net/if_inet6')
  } catch {
    return undefined
  }
  const address = chooseSourceAddress6(parseLinuxIfInet6(text), interfaceName, allowTemporary)
  return address !== undefined && isIPv6(address) ? address : undefined
}

/**
 * macOS and the BSDs: the kernel's own lookup (`route -n get -inet6 default`) first; when it names
 * no gateway address (it fails with "not in table" when there is no default route), the table
 * itself (`netstat -rn -f inet6`).
 */
async function readBsdDefaultRoutes6 (sources: RouteSources): Promise<DefaultRoute[]> {
  let routes: DefaultRoute[] = []
  try {
    routes = parseBsdRouteGet(await sources.run('route', ['-n', 'get', '-inet6', 'default']), 'IPv6')
  } catch { /* no default route, or no route(8): netstat says which */ }
  return routes.length > 0 ? routes : parseBsdNetstatInet6(await sources.run('netstat', ['-rn', '-f', 'inet6']))
}

/**
 * `netstat -rn -f inet6` on macOS and the BSDs: "Destination Gateway Flags Netif Expire" rows,
 * the default route(s) as `default` with the G flag. macOS also lists a `default` per VPN tunnel,
 * scoped to its interface (flag I: used only by sockets bound there), which is skipped. Listed
 * order is kept: the first is the one in use.
 */
export function parseBsdNetstatInet6 (text: string): DefaultRoute[] {
  const routes: DefaultRoute[] = []
  for (const line of text.slice(0, MAX_TABLE_CHARS).split('\n')) {
    const [destination, gatewayText, flags, interfaceName] = line.trim().split(/\s+/)
    if ((destination !== 'default' && destination !== '::/0') || flags === undefined || !flags.includes('G') || flags.includes('I') || interfaceName === undefined) continue
    const gateway = withZone(gatewayText, 'IPv6', interfaceName)
    if (gateway !== undefined) routes.push({ gateway, interfaceName, metric: 0 })
  }
  return routes
}

/**
 * Windows: `route print -6 ::/0` lists "<interface index> <metric> ::/0 <gateway>" among the
 * active routes (parsed by shape, see windowsActiveRouteRows). A link-local gateway gets the
 * interface index as zone (fe80::1%12), as Windows writes it.
 */
export function parseWindowsRoutePrint6 (text: string): DefaultRoute[] {
  const routes: DefaultRoute[] = []
  for (const [index, metric, destination, gatewayText, ...rest] of windowsActiveRouteRows(text)) {
    if (destination !== '::/0' || rest.length > 0 || !/^\d{1,10}$/.test(index ?? '') || !/^\d{1,10}$/.test(metric ?? '')) continue
    const gateway = withZone(gatewayText, 'IPv6', index)
    if (gateway !== undefined && index !== undefined) routes.push({ gateway, interfaceName: index, metric: Number(metric) })
  }
  return routes
}
