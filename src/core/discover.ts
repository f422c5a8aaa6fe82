import { AbortError } from '../errors.js'
import { resolveDiscoverOptions, type DiscoverOptions } from '../options.js'
import { NAT } from './nat.js'
import { locateGateway, raceProbes } from './probe.js'

/**
 * Finds the NAT gateway in front of this host and returns a NAT service driving it with the best
 * protocol that answered (PCP, then NAT-PMP, then UPnP IGDv2, then IGDv1).
 */
export async function discoverNAT (options: DiscoverOptions = {}): Promise<NAT> {
  const resolved = resolveDiscoverOptions(options)
  const signal = resolved.signal
  if (signal?.aborted === true) throw new AbortError('discovery aborted', { cause: signal.reason })
  const location = await locateGateway(resolved)
  return new NAT(await raceProbes(location, resolved), resolved)
}
