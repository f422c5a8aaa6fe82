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

/**
 * Runs every enabled probe to its end (instead of stopping at the first answer) and reports each,
 * for diagnostics such as the CLI's `discover`. Nothing is left open afterwards.
 */
export async function probeGateway (options: DiscoverOptions = {}): Promise<{ gateway: string, localAddress: string, route?: KernelRoute, probes: ProbeReport[] }> {
  const resolved = resolveDiscoverOptions(options)
  const { gateway, localAddress, route } = await locateGateway(resolved)
  return { gateway, localAddress, ...(route === undefined ? {} : { route }), probes: await probeEach({ gateway, localAddress }, resolved, protocolProbes) }
}
