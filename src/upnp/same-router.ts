/**
 * The facts behind following an IPv6 gateway's LOCATION to another of its addresses (the rule is
 * in trust.ts): our addresses and on-link prefixes (/proc/net/if_inet6) before connecting, the
 * neighbour table once connected. Loaded only on that path: IPv4, and a LOCATION naming the
 * gateway itself, never load it.
 */
import { readInterfaceAddresses6 } from '../net/default-gateway6.js'
import { readNeighbours6, type NeighbourSource } from '../net/neighbours.js'
import { UnsupportedError } from '../errors.js'
import { gatewayInterface, offLinkReason, otherDeviceReason, type LinkAddress } from './trust.js'

export interface FollowPlan {
  /** Why the host is not followed (nothing was sent to it), or undefined to go on with `verify`. */
  refused: string | undefined
  /** The interface a link-local host is on. */
  zone: string | undefined
  /** Run once connected to the host, before the request: rejects unless it is the gateway's device. */
  verify: () => Promise<void>
}

/** Where the facts come from; tests give recorded ones. */
export interface SameRouterSources {
  addresses: () => Promise<readonly LinkAddress[] | undefined>
  neighbours: NeighbourSource | undefined
}

const systemSources: SameRouterSources = { addresses: readInterfaceAddresses6, neighbours: undefined }

/** Plans how to follow `host`, named by the LOCATION of an answer from `gateway`. */
export async function followAnnouncedHost (gateway: string, host: string, sources: SameRouterSources = systemSources): Promise<FollowPlan> {
  const addresses = await sources.addresses() ?? []
  const interfaceName = gatewayInterface(gateway, addresses)
  const refuse = (reason: string): FollowPlan => ({ refused: reason, zone: undefined, verify: async () => { throw new UnsupportedError(reason) } })
  if (interfaceName === undefined) return refuse(`the interface of the gateway ${gateway} is unknown`)
  const offLink = offLinkReason(host, interfaceName, addresses)
  if (offLink !== undefined) return refuse(offLink)
  return {
    refused: undefined,
    zone: interfaceName,
    verify: async () => {
      const reason = otherDeviceReason(host, gateway, interfaceName, await readNeighbours6(sources.neighbours))
      if (reason !== undefined) throw new UnsupportedError(reason)
    }
  }
}
