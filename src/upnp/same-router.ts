/**
 * Following an IPv6 gateway's LOCATION to another of its own addresses: the rule (below), and the
 * facts behind it: our addresses and on-link prefixes before connecting, the neighbour table once
 * connected. Part of the client's chunk (loaded when a gateway answers); IPv4, and a LOCATION
 * naming the gateway itself, never run it.
 */
import { addressScope, samePrefix } from '../net/ip-address.js'
import { findNeighbour, readNeighbours6, type Neighbour, type NeighbourSource } from '../net/neighbours.js'
import { UnsupportedError } from '../errors.js'
import { normalizeAddress, zoneOf } from './trust.js'

/*
 * The rule. The gateway answers SSDP from the address we searched (usually its link-local next hop),
 * and its LOCATION may name another of its own addresses: global, ULA or link-local (miniupnpd
 * names its global address, AVM Fritz!Box a link-local one). Such a LOCATION is followed only when
 * facts show it is the same router, never on its word:
 *
 * 1. the address is on the gateway's link: link-local (on the gateway's interface, the one the
 *    answer came on), or inside an on-link prefix of that interface (one of our addresses there
 *    shares its prefix), checked before any packet goes to it; and
 * 2. once connected to it (so that neighbour discovery has resolved it), before any request, its
 *    neighbour entry on that interface has the gateway's own link-layer address.
 *
 * Otherwise nothing is asked of that host, the reason is published (--verbose shows it), and the
 * gateway's own address is asked for the same port and path instead, as for IPv4.
 */

/** Our IPv6 addresses as the judgments below need them (InterfaceAddress6 from net/default-gateway6). */
export interface LinkAddress { address: string, interfaceName: string, prefixLength: number }

/** The interface an IPv6 gateway is on: its zone, else the one whose on-link prefix holds it. */
export function gatewayInterface (gateway: string, addresses: readonly LinkAddress[]): string | undefined {
  return zoneOf(gateway) ?? onLinkInterface(normalizeAddress(gateway), addresses)
}

function onLinkInterface (address: string, addresses: readonly LinkAddress[]): string | undefined {
  return addresses.find((own) => inPrefixOf(own, address))?.interfaceName
}

/** Whether `address` is in the prefix of our address `own`. A /128 (or /0) says nothing about the link. */
function inPrefixOf (own: LinkAddress, address: string): boolean {
  return own.prefixLength > 0 && own.prefixLength < 128 && samePrefix(own.address, address, own.prefixLength)
}

/** Why `host` is not on the link of `interfaceName`, or undefined when it is. */
export function offLinkReason (host: string, interfaceName: string, addresses: readonly LinkAddress[]): string | undefined {
  const address = normalizeAddress(host)
  if (addressScope(address) === 'link-local') return undefined
  const onLink = addresses.some((own) => own.interfaceName === interfaceName && inPrefixOf(own, address))
  return onLink ? undefined : `${address} is off-link: no prefix of ${interfaceName} holds it`
}

/** Why the neighbour table does not show `host` as the gateway's own device, or undefined when it does. */
export function otherDeviceReason (host: string, gateway: string, interfaceName: string, neighbours: readonly Neighbour[] | undefined): string | undefined {
  const address = normalizeAddress(host)
  if (neighbours === undefined) return 'the IPv6 neighbour table cannot be read here (ip -6 neigh show)'
  const ours = findNeighbour(neighbours, normalizeAddress(gateway), interfaceName)
  if (ours?.linkLayerAddress === undefined) return `the gateway ${normalizeAddress(gateway)} has no neighbour entry on ${interfaceName}`
  const theirs = findNeighbour(neighbours, address, interfaceName)
  if (theirs?.linkLayerAddress === undefined) return `${address} has no neighbour entry on ${interfaceName}: not reached on the link`
  if (theirs.linkLayerAddress !== ours.linkLayerAddress) {
    return `${address} is another device on the link (link-layer address ${theirs.linkLayerAddress}, the gateway's is ${ours.linkLayerAddress})`
  }
  return undefined
}

export interface FollowPlan {
  /** Why the host is not followed (nothing was sent to it), or undefined to go on with `verify`. */
  refused: string | undefined
  /** The interface a link-local host is on. */
  zone: string | undefined
  /** Run once connected to the host, before the request: rejects unless it is the gateway's device. */
  verify: () => Promise<void>
}

/** Where the facts come from (src/protocols.ts gives this host's; tests give recorded ones). */
export interface SameRouterSources {
  /** Our IPv6 addresses with their interface and prefix length (readInterfaceAddresses6). */
  addresses: () => Promise<readonly LinkAddress[] | undefined>
  /** The neighbour table's text. Default: `ip -6 neigh show` (Linux). */
  neighbours?: NeighbourSource | undefined
}

/** Plans how to follow `host`, named by the LOCATION of an answer from `gateway`. */
export async function followAnnouncedHost (gateway: string, host: string, sources: SameRouterSources | undefined): Promise<FollowPlan> {
  const refuse = (reason: string): FollowPlan => ({ refused: reason, zone: undefined, verify: async () => { throw new UnsupportedError(reason) } })
  if (sources === undefined) return refuse('this probe was given no way to read the host\'s addresses')
  const addresses = await sources.addresses() ?? []
  const interfaceName = gatewayInterface(gateway, addresses)
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
