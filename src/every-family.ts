import type { TransportProtocol } from './core/gateway-client.js'
import type { DiscoverOptions, MappingOptions } from './options.js'
import { discoverNAT } from './discover.js'
import type { Mapping } from './core/mapping.js'
import type { NAT } from './core/nat.js'

/** What mapEveryFamily() opened, and why a family has nothing. */
export interface EveryFamilyMapping {
  /** One mapping per family whose gateway was found: IPv4 first, then IPv6. */
  mappings: Mapping[]
  /** The NATs that own those mappings. */
  nats: NAT[]
  /** Why a family has no mapping (no gateway, discovery failed, the first request failed). */
  reasons: Partial<Record<'IPv4' | 'IPv6', Error>>
  /** Closes every NAT (and so every mapping). Idempotent. */
  close: () => Promise<void>
  /** close(), for `await using`. */
  [Symbol.asyncDispose]: () => Promise<void>
}

/**
 * "Make my port reachable on every family I have", in one call: discovers the IPv4 NAT and the
 * IPv6 gateway in parallel, and maps `internalPort` on each one found (a port mapping on IPv4, an
 * inbound pinhole to this host's global address on IPv6). A family that fails is kept in
 * `reasons` and does not fail the others; the call rejects only if no family got a NAT.
 * `options` go to both discoveries (`family` and `gateway` are per family and are ignored).
 *
 * @example
 * ```ts
 * const { mappings, close } = await mapEveryFamily('tcp', 8080)
 * for (const m of mappings) console.log(await m.externalAddr())   // { address, port, family }
 * await close()
 * ```
 */
export async function mapEveryFamily (protocol: TransportProtocol, internalPort: number,
  options: { discover?: Omit<DiscoverOptions, 'family' | 'gateway'>, mapping?: MappingOptions } = {}): Promise<EveryFamilyMapping> {
  const families = ['IPv4', 'IPv6'] as const
  const reasons: EveryFamilyMapping['reasons'] = {}
  const found = await Promise.all(families.map(async (family) => {
    let nat: NAT
    try {
      nat = await discoverNAT({ ...options.discover, family })
    } catch (error) {
      reasons[family] = error instanceof Error ? error : new Error(String(error))
      return undefined
    }
    try {
      return { nat, mapping: await nat.newMapping(protocol, internalPort, options.mapping) }
    } catch (error) {
      reasons[family] = error instanceof Error ? error : new Error(String(error))
      await nat.close()
      return undefined
    }
  }))
  const opened = found.filter((entry) => entry !== undefined)
  const nats = opened.map((entry) => entry.nat)
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= Promise.all(nats.map(async (nat) => { await nat.close() })).then(() => {})
    await closing
  }
  if (opened.length === 0) {
    throw new AggregateError(Object.values(reasons), `no NAT on any family: ${families.map((family) => `${family}: ${reasons[family]?.message ?? '?'}`).join('; ')}`)
  }
  return { mappings: opened.map((entry) => entry.mapping), nats, reasons, close, [Symbol.asyncDispose]: close }
}
