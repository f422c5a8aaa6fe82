import type { Socket } from 'node:dgram'
import { NoDefaultGatewayError, NoNextHopError } from '../errors.js'
import { debug } from '../debug.js'
import { bestOf, findDefaultGateway, systemRouteSources, type DefaultRoute, type RouteSources } from './default-gateway.js'
import { findDefaultGateway6, readDefaultRoutes6, readInterfaceAddresses6, type InterfaceAddress6 } from './default-gateway6.js'
import { loadDgram } from './dgram.js'
import { isIPv4, isIPv6, sameAddress } from './ip-address.js'
import { closeQuietly, connectedSocket, connectSocket } from './udp-channel.js'

/**
 * The gateway the kernel really sends Internet traffic through, with every table and `ip rule`
 * (policy routing: VPN clients, multi-WAN, wg-quick), not only the main table that /proc/net/route
 * shows. Node has no netlink, so:
 * - cheap, always: connect() a UDP socket toward an Internet host. Nothing is sent, but the kernel
 *   does the whole policy-routing lookup and picks our source address for it. When the main
 *   table's default route leaves from that same address (or, on IPv6, by that same interface),
 *   the kernel uses it: the common case costs one connect() and disconnect() more.
 * - dear, only when they disagree or the main table has no default route: `ip route get`, which
 *   names the next hop the kernel chose (or none, on a point-to-point link).
 * Not seen by the cheap check: two gateways on the same link and address, one per table.
 */

/** Any host on the Internet will do: connect() toward it sends nothing, it only asks the kernel. */
export const INTERNET_HOST = { IPv4: '8.8.8.8', IPv6: '2001:4860:4860::8888' } as const
/** RFC 863's discard port: any port would do, nothing is sent. */
const DISCARD_PORT = 9

/** The route the kernel takes, with what the main table said where it differs. */
export interface KernelRoute extends DefaultRoute {
  /** The routing table `ip route get` named, when the route came from it (not from the main table). */
  table?: string
  /** The main table's default next hop, when the kernel does not use it. */
  unusedGateway?: string
}

/** What `ip route get` printed: the next hop (absent on a point-to-point link), the interface, our source. */
export interface IpRouteGet {
  gateway?: string
  interfaceName?: string
  localAddress?: string
  table?: string
}

const MAX_IP_ROUTE_GET_CHARS = 4_096
/** Route types `ip route get` prints first when nothing can be sent there. */
const NO_ROUTE_TYPES = new Set(['unreachable', 'blackhole', 'prohibit', 'throw'])

/**
 * `ip route get ADDRESS` (iproute2 and busybox print the same first line):
 * "8.8.8.8 via 192.168.1.1 dev eth0 table 100 src 192.168.1.20 uid 1000", or without `via` on a
 * point-to-point link ("8.8.8.8 dev wg0 table 51820 src 10.2.0.2 uid 0"). IPv4 over an IPv6 next
 * hop (RFC 5549) reads "via inet6 fe80::1". A link-local next hop gets its interface as zone.
 * undefined when the kernel has no usable route.
 */
export function parseIpRouteGet (text: string): IpRouteGet | undefined {
  const tokens = (text.slice(0, MAX_IP_ROUTE_GET_CHARS).split('\n')[0] ?? '').trim().split(/\s+/)
  if (tokens[0] === undefined || tokens[0] === '' || NO_ROUTE_TYPES.has(tokens[0])) return undefined
  const route: IpRouteGet = {}
  for (let i = 1; i < tokens.length - 1; i++) {
    const key = tokens[i]
    let value = tokens[i + 1] ?? ''
    if (key === 'via' && (value === 'inet' || value === 'inet6')) value = tokens[++i + 1] ?? ''
    if (key === 'via' && (isIPv4(value) || isIPv6(value))) route.gateway = value
    else if (key === 'dev') route.interfaceName = value
    else if (key === 'src' && (isIPv4(value) || isIPv6(value))) route.localAddress = value
    else if (key === 'table') route.table = value
    else continue
    i++
  }
  if (route.interfaceName === undefined) return undefined
  if (route.gateway !== undefined && /^fe[89ab]/i.test(route.gateway) && !route.gateway.includes('%')) route.gateway = `${route.gateway}%${route.interfaceName}`
  return route
}

/** Asks `ip route get` for the kernel's route to the Internet; undefined when `ip` cannot tell. */
async function askKernel (family: 'IPv4' | 'IPv6', sources: RouteSources): Promise<IpRouteGet | undefined | 'no route'> {
  let text: string
  try {
    text = await sources.run('ip', [family === 'IPv4' ? '-4' : '-6', 'route', 'get', INTERNET_HOST[family]])
  } catch (error) {
    // The kernel's no ("RTNETLINK answers: Network is unreachable", "No route to host" for an
    // unreachable route, "Permission denied" for a prohibit one), or no `ip` at all (a container
    // without iproute2). execFile's message carries the command's stderr.
    const message = (error as Error).message
    if (/RTNETLINK answers/i.test(message)) return 'no route'
    debug('ip route get: %s', (error as Error).message)
    return undefined
  }
  return parseIpRouteGet(text) ?? 'no route'
}

/**
 * Decides from the main table's best default route and what the kernel would do. `sameWay`: the
 * cheap check found the main table's route to be the kernel's. `kernel` is asked only when not.
 */
async function decide (family: 'IPv4' | 'IPv6', main: DefaultRoute | undefined, sameWay: boolean, sources: RouteSources): Promise<KernelRoute> {
  if (main !== undefined && sameWay) return main
  const kernel = await askKernel(family, sources)
  if (kernel === undefined) {
    if (main !== undefined) return main
    throw new NoDefaultGatewayError(`no ${family} default route in the main table, and \`ip route get\` could not say which route the kernel uses`)
  }
  if (kernel === 'no route') throw new NoDefaultGatewayError(`no ${family} route to the Internet on this host (${sources.platform})`)
  if (kernel.gateway === undefined) throw new NoNextHopError(family, kernel.interfaceName ?? '?', main?.gateway)
  const unused = main !== undefined && !sameAddress(main.gateway, kernel.gateway) ? { unusedGateway: main.gateway } : {}
  return {
    gateway: kernel.gateway,
    metric: 0,
    ...(kernel.interfaceName === undefined ? {} : { interfaceName: kernel.interfaceName }),
    ...(kernel.localAddress === undefined ? {} : { localAddress: kernel.localAddress }),
    ...(kernel.table === undefined ? {} : { table: kernel.table }),
    ...unused
  }
}

/** Connects `socket` to `address`:`port` and returns our address on it (routing decides, nothing is sent); undefined with no route. */
async function connectAndRead (socket: Socket, address: string, port: number): Promise<string | undefined> {
  try {
    await connectSocket(socket, port, address)
  } catch {
    return undefined
  }
  return socket.address().address
}

const isLinux = (platform: NodeJS.Platform): boolean => platform === 'linux' || platform === 'android'

/**
 * IPv4: the kernel's route to the Internet, and a socket connected to its next hop's `port` with
 * our address on it (the caller owns the socket, see connectedSocket). Elsewhere than Linux, the
 * platform's own default route lookup (findDefaultGateway).
 */
export async function routeToInternet (port: number, sources: RouteSources = systemRouteSources): Promise<{ route: KernelRoute, socket: Socket, localAddress: string }> {
  if (!isLinux(sources.platform)) {
    const route = await findDefaultGateway(sources)
    return { route, ...await connectedSocket(route.gateway, port) }
  }
  const main = await mainTableRoute(sources)
  const socket = (await loadDgram()).createSocket('udp4')
  socket.on('error', () => {})
  try {
    const { towardInternet, facing: facingMain } = await askBoth(socket, main?.gateway, port)
    let facing = facingMain
    if (towardInternet === undefined) throw new NoDefaultGatewayError(`no IPv4 route to the Internet on this host (${sources.platform})`)
    if (main !== undefined && facing === towardInternet) {
      socket.unref()
      return { route: main, socket, localAddress: facing }
    }
    const route = await decide('IPv4', main, false, sources)
    if (facing === undefined || route !== main) {
      if (facing !== undefined) socket.disconnect()
      facing = await connectAndRead(socket, route.gateway, port)
      if (facing === undefined) throw new NoDefaultGatewayError(`no route to ${route.gateway}`)
    }
    socket.unref()
    return { route, socket, localAddress: facing }
  } catch (error) {
    closeQuietly(socket)
    throw error
  }
}

/**
 * The common case's two questions on one socket, in one promise (this is on every discovery's
 * path, so callbacks rather than a promise per step: measured, each layer costs microseconds):
 * our address toward the Internet (connect, then disconnect), then our address toward `gateway`,
 * the socket left connected to it. A failed connect (no route) leaves its answer undefined.
 */
async function askBoth (socket: Socket, gateway: string | undefined, port: number): Promise<{ towardInternet?: string, facing?: string }> {
  return await new Promise((resolve) => {
    // A failed implicit bind is an 'error' event; a failed connect reaches the callback (see connectSocket).
    const onError = (): void => { resolve({}) }
    socket.once('error', onError)
    socket.connect(DISCARD_PORT, INTERNET_HOST.IPv4, (...failed: unknown[]) => {
      if (failed[0] instanceof Error) {
        socket.removeListener('error', onError)
        resolve({})
        return
      }
      const towardInternet = socket.address().address
      socket.disconnect()
      if (gateway === undefined) {
        socket.removeListener('error', onError)
        resolve({ towardInternet })
        return
      }
      socket.connect(port, gateway, (...failedToo: unknown[]) => {
        socket.removeListener('error', onError)
        resolve(failedToo[0] instanceof Error ? { towardInternet } : { towardInternet, facing: socket.address().address })
      })
    })
  })
}

async function mainTableRoute (sources: RouteSources): Promise<DefaultRoute | undefined> {
  try {
    return await findDefaultGateway(sources)
  } catch (error) {
    if (error instanceof NoDefaultGatewayError) return undefined
    throw error
  }
}

/**
 * IPv6: the kernel's route to the Internet and the host's IPv6 addresses (undefined where they
 * cannot be read; there, the route's localAddress is ours toward the Internet).
 * /proc/net/ipv6_route lists the default routes of every table, so a route there is the kernel's
 * when it leaves by the interface our address toward the Internet is on.
 */
export async function routeToInternet6 (sources: RouteSources = systemRouteSources): Promise<{ route: KernelRoute, addresses: InterfaceAddress6[] | undefined }> {
  if (!isLinux(sources.platform)) {
    // No address flags to read here: our address toward the Internet is the kernel's own choice.
    const [route, towardInternet] = await Promise.all([findDefaultGateway6(sources), sourceToward6()])
    return { route: towardInternet === undefined ? route : { ...route, localAddress: towardInternet }, addresses: undefined }
  }
  const [towardInternet, addresses] = await Promise.all([sourceToward6(), readInterfaceAddresses6(sources)])
  if (towardInternet === undefined) throw new NoDefaultGatewayError(`no IPv6 route to the Internet on this host (${sources.platform})`)
  const interfaceName = addresses?.find((a) => sameAddress(a.address, towardInternet))?.interfaceName
  const routes = await readDefaultRoutes6(sources)
  // The route by the interface the kernel picked for the Internet is its; another is only a candidate.
  const onInterface = bestOf(routes.filter((route) => route.interfaceName === interfaceName))
  return { route: await decide('IPv6', onInterface ?? bestOf(routes), onInterface !== undefined, sources), addresses }
}

/** Our IPv6 address toward the Internet (the kernel's choice); undefined with no route there. */
async function sourceToward6 (): Promise<string | undefined> {
  const socket = (await loadDgram()).createSocket('udp6')
  socket.on('error', () => {})
  try {
    return await connectAndRead(socket, INTERNET_HOST.IPv6, DISCARD_PORT)
  } finally {
    closeQuietly(socket)
  }
}
