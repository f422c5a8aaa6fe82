/**
 * The host's IPv6 neighbour table (Linux): which link-layer address each on-link IPv6 address
 * resolved to. It tells whether two IPv6 addresses belong to one device on the link (a router's
 * link-local and global addresses share its MAC). Linux has no /proc file for it (only netlink,
 * which Node cannot speak), so this runs iproute2's `ip -6 neigh show`: a few ms, paid only by the
 * callers that need the answer.
 */
import { isIPv6, sameAddress } from './ip-address.js'

export interface Neighbour {
  address: string
  interfaceName: string
  /** Lower case, colon-separated; undefined while unresolved (INCOMPLETE, FAILED). */
  linkLayerAddress: string | undefined
  /** The neighbour said it is a router (the R flag of its Neighbor Advertisements, RFC 4861 §4.4). */
  router: boolean
}

/** Reads the table; replaced in tests with recorded output. Rejects when it cannot be read. */
export type NeighbourSource = () => Promise<string>

const MAX_TABLE_CHARS = 1_000_000
const LINK_LAYER_ADDRESS = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5,19}$/

/**
 * `ip -6 neigh show` output: "ADDRESS dev IF lladdr MAC [router] [proxy] STATE", or without
 * lladdr while unresolved. Lines that do not read so are skipped.
 */
export function parseIpNeighbours (text: string): Neighbour[] {
  const neighbours: Neighbour[] = []
  for (const line of text.slice(0, MAX_TABLE_CHARS).split('\n')) {
    const words = line.trim().split(/\s+/)
    const [address, devKeyword, interfaceName] = words
    if (address === undefined || devKeyword !== 'dev' || interfaceName === undefined || !isIPv6(address)) continue
    const lladdr = words.indexOf('lladdr')
    const mac = lladdr === -1 ? undefined : words[lladdr + 1]?.toLowerCase()
    const state = words.at(-1) ?? ''
    const resolved = mac !== undefined && LINK_LAYER_ADDRESS.test(mac) && state !== 'FAILED' && state !== 'INCOMPLETE'
    neighbours.push({ address, interfaceName, linkLayerAddress: resolved ? mac : undefined, router: words.includes('router') })
  }
  return neighbours
}

/** The resolved entry for `address` on `interfaceName`, if the table has one. */
export function findNeighbour (neighbours: readonly Neighbour[], address: string, interfaceName: string): Neighbour | undefined {
  return neighbours.find((entry) => entry.interfaceName === interfaceName && entry.linkLayerAddress !== undefined && sameAddress(entry.address, address))
}

/** `ip -6 neigh show`, bounded in time and size. */
export const systemNeighbourSource: NeighbourSource = async () => {
  const { execFile } = await import('node:child_process')
  return await new Promise((resolve, reject) => {
    execFile('ip', ['-6', 'neigh', 'show'], { timeout: 2_000, maxBuffer: MAX_TABLE_CHARS }, (error, stdout) => {
      if (error !== null) reject(error)
      else resolve(stdout)
    })
  })
}

/** The IPv6 neighbour table, or undefined where it cannot be read (not Linux, no iproute2). */
export async function readNeighbours6 (source: NeighbourSource = systemNeighbourSource, platform: NodeJS.Platform = process.platform): Promise<Neighbour[] | undefined> {
  if (source === systemNeighbourSource && platform !== 'linux' && platform !== 'android') return undefined
  try {
    return parseIpNeighbours(await source())
  } catch {
    return undefined
  }
}
