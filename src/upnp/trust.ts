/**
 * Which hosts a UPnP client talks to. Anything on the LAN can answer an M-SEARCH, so the policy
 * is: only the gateway is trusted.
 *
 * - An SSDP answer whose source address is not the gateway is ignored outright.
 * - An answer from the gateway whose LOCATION names another host is re-pointed at the gateway
 *   (same port and path). Routers with a floating or second LAN address announce that address
 *   (tailscale/tailscale#5502); since the answer came from the gateway itself, asking the gateway
 *   is what it meant, and we never follow a URL to a third host.
 * - Control URLs must point at the gateway, or at the host the gateway announced for itself
 *   (then re-pointed likewise); a control URL naming any other host is refused.
 * - IPv6: a LOCATION naming another address of the gateway itself is followed (see below).
 */
import { addressScope, isIP, samePrefix } from '../net/ip-address.js'
import { findNeighbour, type Neighbour } from '../net/neighbours.js'

/** An address in one canonical spelling: no brackets, no zone, no IPv4-mapped prefix, lower case. */
export function normalizeAddress (address: string): string {
  let value = address.trim().toLowerCase()
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1)
  const zone = value.indexOf('%')
  if (zone !== -1) value = value.slice(0, zone)
  if (value.startsWith('::ffff:') && isIP(value.slice(7)) === 4) value = value.slice(7)
  return value
}

/** Whether two spellings name the same address. */
export function sameAddress (a: string, b: string): boolean {
  return normalizeAddress(a) === normalizeAddress(b)
}

/** The host of `url` as an address (brackets removed), or the host name as written. */
export function hostOf (url: URL): string {
  return normalizeAddress(url.hostname)
}

/** A copy of `url` that names `gateway` as its host, keeping port, path and query. */
export function pointAtGateway (url: URL, gateway: string): URL {
  const copy = new URL(url.href)
  const address = normalizeAddress(gateway)
  copy.hostname = isIP(address) === 6 ? `[${address}]` : address
  return copy
}

/**
 * The URL to use for a control URL from a description fetched from `gateway`, or undefined when
 * it points off the gateway. `announcedHost` is the host the gateway's own LOCATION named;
 * `followed`, that host when it was shown to be the gateway's own address (then kept as named).
 */
export function trustedControlUrl (controlUrl: URL, gateway: string, announcedHost: string, followed?: string): URL | undefined {
  if (controlUrl.protocol !== 'http:' || controlUrl.username !== '' || controlUrl.password !== '') return undefined
  const host = hostOf(controlUrl)
  if (sameAddress(host, gateway) || (followed !== undefined && host === normalizeAddress(followed))) return controlUrl
  if (host === normalizeAddress(announcedHost)) return pointAtGateway(controlUrl, gateway)
  return undefined
}

/** The zone of a scoped address (`lan0` of `fe80::1%lan0`), or undefined. */
export function zoneOf (address: string): string | undefined {
  const start = address.indexOf('%')
  return start === -1 ? undefined : address.slice(start + 1)
}

/*
 * IPv6: the gateway answers SSDP from the address we searched (usually its link-local next hop),
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
  // A /128 (or a prefix length of 0) says nothing about what else is on the link.
  return addresses.find((own) => own.prefixLength > 0 && own.prefixLength < 128 && samePrefix(own.address, address, own.prefixLength))?.interfaceName
}

/** Why `host` is not on the link of `interfaceName`, or undefined when it is. */
export function offLinkReason (host: string, interfaceName: string, addresses: readonly LinkAddress[]): string | undefined {
  const address = normalizeAddress(host)
  if (addressScope(address) === 'link-local') return undefined
  const onLink = addresses.some((own) => own.interfaceName === interfaceName && own.prefixLength > 0 && own.prefixLength < 128 && samePrefix(own.address, address, own.prefixLength))
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
