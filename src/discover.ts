import { NAT } from './core/nat.js'
import { locateGateway, probeEach, raceProbes, type ProbeReport } from './core/probe.js'
import { AbortError } from './errors.js'
import type { KernelRoute } from './net/route-to-internet.js'
import { resolveDiscoverOptions, type DiscoverOptions } from './options.js'
import { protocolProbes } from './protocols.js'

/**
 * Finds the NAT gateway in front of this host and returns a NAT service driving it with the best
 * protocol that answered (PCP, then NAT-PMP, then UPnP IGDv2, then IGDv1).
 */
export async function discoverNAT (options: DiscoverOptions = {}): Promise<NAT> {
  const resolved = resolveDiscoverOptions(options)
  const signal = resolved.signal
  if (signal?.aborted === true) throw new AbortError('discovery aborted', { cause: signal.reason })
  // The socket that finds our address goes on to carry PCP (or NAT-PMP): see ProbeContext.takeSocket.
  const location = await locateGateway(resolved, true)
  return new NAT(await raceProbes(location, resolved, protocolProbes), resolved, protocolProbes)
}

/** What probeGateway() found. */
export interface GatewayProbe {
  /** The gateway probed: options.gateway, else the next hop of the route the kernel uses to the Internet. */
  gateway: string
  /** Our address on the link facing the gateway. */
  localAddress: string
  /**
   * The route the gateway was found on (absent with options.gateway): its table when policy
   * routing chose it, and the main table's default next hop when the kernel does not use it.
   */
  route?: KernelRoute
  /** One report per protocol probed, each run to its end. */
  probes: ProbeReport[]
}

/**
 * Runs every enabled probe to its end (instead of stopping at the first answer) and reports each,
 * for diagnostics such as the CLI's `discover`. Nothing is left open afterwards.
 */
export async function probeGateway (options: DiscoverOptions = {}): Promise<GatewayProbe> {
  const resolved = resolveDiscoverOptions(options)
  const { gateway, localAddress, route } = await locateGateway(resolved)
  return { gateway, localAddress, ...(route === undefined ? {} : { route }), probes: await probeEach({ gateway, localAddress }, resolved, protocolProbes) }
}
