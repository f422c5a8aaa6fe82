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
 * - IPv6: a LOCATION naming another address of the gateway itself is followed, once facts show it
 *   is (same-router.ts, loaded with the client only on that path).
 */
import { isIP } from '../net/ip-address.js'

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
