import { nodeFs } from '../builtins.js'
import { isIPv4, isIPv6 } from './ip-address.js'
import { NoDefaultGatewayError } from '../errors.js'

export interface DefaultRoute {
  /** The next hop of the default route. */
  gateway: string
  /** The interface the route leaves by, where the platform says. */
  interfaceName?: string
  /** Our address on that interface, where the platform says (Windows does). */
  localAddress?: string
  /** Lower is preferred. */
  metric: number
}

/** Where the route table is read from; replaced in tests with recorded output. */
export interface RouteSources {
  platform: NodeJS.Platform
  readFile: (path: string) => Promise<string>
  run: (command: string, args: string[]) => Promise<string>
}

const MAX_ROUTE_TABLE_CHARS = 1_000_000

/**
 * Reads a /proc file. Synchronously, on purpose: the kernel writes it from memory in microseconds,
 * while fs/promises would make five thread-pool round trips (open, stat, read, read, close) and
 * take ten times as long. node:fs is loaded with Node itself, but not imported (see builtins.ts).
 */
export async function readProcFile (path: string): Promise<string> {
  const fs = nodeFs() ?? await import('node:fs')
  return fs.readFileSync(path, 'utf8')
}

export const systemRouteSources: RouteSources = {
  platform: process.platform,
  readFile: readProcFile,
  run: async (command, args) => {
    // Only macOS, the BSDs and Windows run a command; Linux reads /proc, so load this on demand.
    const { execFile } = await import('node:child_process')
    return await new Promise((resolve, reject) => {
      execFile(command, args, { timeout: 2_000, maxBuffer: MAX_ROUTE_TABLE_CHARS, windowsHide: true }, (error, stdout) => {
        if (error !== null) reject(error)
        else resolve(stdout)
      })
    })
  }
}

/** Finds the IPv4 default gateway, preferring the route with the lowest metric. */
export async function findDefaultGateway (sources: RouteSources = systemRouteSources): Promise<DefaultRoute> {
  let routes: DefaultRoute[]
  try {
    routes = await readDefaultRoutes(sources)
  } catch (error) {
    throw new NoDefaultGatewayError(`could not read the route table on ${sources.platform}: ${(error as Error).message}`, { cause: error })
  }
  const best = bestOf(routes)
  if (best === undefined) throw new NoDefaultGatewayError(`no IPv4 default route on this host (${sources.platform})`)
  return best
}

/** The route with the lowest metric (the first of equals, as the table lists them). */
export function bestOf (routes: DefaultRoute[]): DefaultRoute | undefined {
  let best: DefaultRoute | undefined
  for (const route of routes) if (best === undefined || route.metric < best.metric) best = route
  return best
}

async function readDefaultRoutes (sources: RouteSources): Promise<DefaultRoute[]> {
  switch (sources.platform) {
    case 'linux':
    case 'android':
      return parseLinuxRouteTable(await sources.readFile('/proc/net/route'))
    case 'darwin':
    case 'freebsd':
    case 'openbsd':
      return parseBsdRouteGet(await sources.run('route', ['-n', 'get', 'default']))
    case 'win32':
      return parseWindowsRoutePrint(await sources.run('route', ['print', '-4', '0.0.0.0']))
    default:
      throw new Error(`unsupported platform ${sources.platform}`)
  }
}

/** The host's byte order, without loading node:os for it. */
const HOST_BYTE_ORDER: 'LE' | 'BE' = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 'LE' : 'BE'

const RTF_UP = 0x1
const RTF_GATEWAY = 0x2

/**
 * A /proc/net/route line whose destination is 0.0.0.0: interface, gateway, flags, then (past
 * RefCnt and Use) metric and mask. Other lines (the header, every other route) do not match, so
 * the table is read in one pass without splitting each line into fields.
 */
const DEFAULT_ROUTE_LINE = /^[ \t]*(\S+)[ \t]+00000000[ \t]+(\S+)[ \t]+(\S+)[ \t]+\S+[ \t]+\S+[ \t]+(\S+)[ \t]+(\S+)/gm

/**
 * /proc/net/route: a header line, then one route per line, addresses as 32-bit hex in host byte
 * order (so "0101A8C0" is 192.168.1.1 on a little-endian host).
 */
export function parseLinuxRouteTable (text: string, byteOrder: 'LE' | 'BE' = HOST_BYTE_ORDER): DefaultRoute[] {
  const routes: DefaultRoute[] = []
  const table = text.slice(text.indexOf('\n') + 1, MAX_ROUTE_TABLE_CHARS)
  for (const [, interfaceName = '', gatewayHex = '', flagsHex = '', metric = '', mask] of table.matchAll(DEFAULT_ROUTE_LINE)) {
    if (mask !== '00000000') continue
    const flags = Number.parseInt(flagsHex, 16)
    if ((flags & (RTF_UP | RTF_GATEWAY)) !== (RTF_UP | RTF_GATEWAY)) continue
    const gateway = hexToIPv4(gatewayHex, byteOrder)
    if (gateway === undefined) continue
    routes.push({ gateway, interfaceName, metric: Number.parseInt(metric, 10) || 0 })
  }
  return routes
}

function hexToIPv4 (hex: string, byteOrder: 'LE' | 'BE'): string | undefined {
  if (!/^[0-9a-fA-F]{8}$/.test(hex)) return undefined
  const value = Number.parseInt(hex, 16)
  const [a, b, c, d] = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]
  return byteOrder === 'LE' ? `${d}.${c}.${b}.${a}` : `${a}.${b}.${c}.${d}`
}

/**
 * macOS and the BSDs: `route -n get default` (or `-inet6 default`) prints "gateway: 192.168.1.1"
 * and "interface: en0", one field a line (FreeBSD adds "fib: 0"). A link-local IPv6 gateway is
 * printed with its zone (fe80::1%en0); one without gets the interface as zone.
 */
export function parseBsdRouteGet (text: string, family: 'IPv4' | 'IPv6' = 'IPv4'): DefaultRoute[] {
  const fields = new Map<string, string>()
  for (const line of text.slice(0, MAX_ROUTE_TABLE_CHARS).split('\n')) {
    const match = /^\s*([a-z ]+):\s*(\S+)/.exec(line)
    if (match?.[1] !== undefined && match[2] !== undefined) fields.set(match[1].trim(), match[2])
  }
  const interfaceName = fields.get('interface')
  const gateway = withZone(fields.get('gateway'), family, interfaceName)
  if (gateway === undefined) return []
  return [{ gateway, metric: 0, ...(interfaceName === undefined ? {} : { interfaceName }) }]
}

/** `address` if it is of `family` (with a zone, for a link-local IPv6 one), else undefined. */
export function withZone (address: string | undefined, family: 'IPv4' | 'IPv6', interfaceName: string | undefined): string | undefined {
  if (address === undefined) return undefined
  if (family === 'IPv4') return isIPv4(address) ? address : undefined
  if (!isIPv6(address)) return undefined
  return /^fe[89ab]/i.test(address) && !address.includes('%') && interfaceName !== undefined ? `${address}%${interfaceName}` : address
}

/**
 * The route rows of Windows' `route print` that are in effect, each split into fields. Parsed by
 * shape, not by heading, since the headings are translated ("Active Routes:", "Aktive Routen:",
 * "Itinéraires actifs :"): a table's rows follow a heading that ends with a colon, the first
 * such heading is the active routes and the second the persistent ones, which are not in effect
 * by themselves. The interface list and the tables' titles end with no colon.
 */
export function windowsActiveRouteRows (text: string): string[][] {
  const rows: string[][] = []
  let headings = 0
  for (const line of text.slice(0, MAX_ROUTE_TABLE_CHARS).split(/\r?\n/)) {
    if (/^\S.*:\s*$/.test(line)) {
      headings++
      continue
    }
    if (headings % 2 === 1 && /^\s/.test(line)) rows.push(line.trim().split(/\s+/))
  }
  return rows
}

const INTEGER = /^\d{1,10}$/

/**
 * Windows: `route print -4 0.0.0.0` lists "0.0.0.0 0.0.0.0 <gateway> <interface address> <metric>"
 * among the active routes (see windowsActiveRouteRows); an on-link gateway is a word there
 * ("On-link", "Auf Verbindung") and no default route.
 */
export function parseWindowsRoutePrint (text: string): DefaultRoute[] {
  const routes: DefaultRoute[] = []
  for (const [destination, mask, gateway, localAddress, metric, ...rest] of windowsActiveRouteRows(text)) {
    if (destination !== '0.0.0.0' || mask !== '0.0.0.0' || rest.length > 0) continue
    if (gateway === undefined || !isIPv4(gateway) || localAddress === undefined || !isIPv4(localAddress) || !INTEGER.test(metric ?? '')) continue
    routes.push({ gateway, localAddress, metric: Number(metric) })
  }
  return routes
}
