import type { MulticastGroup } from '../net/multicast.js'

/** UPnP IGD numbers, named once. Sizes are in bytes, times in milliseconds unless a name says seconds. */

/** UDA 1.1 §1.1.2: SSDP's UDP port, on the multicast group and on devices (unicast M-SEARCH). */
export const SSDP_PORT = 1900

/** UDA 1.1 §1.1.2: the SSDP multicast group for IPv4. */
export const SSDP_MULTICAST_IPV4 = '239.255.255.250'

/** UDA 1.1 §1.2: where a device multicasts its NOTIFYs (alive, byebye) on an IPv4 link. */
export const SSDP_NOTIFY_GROUP: Readonly<MulticastGroup> = { group: SSDP_MULTICAST_IPV4, port: SSDP_PORT }

/** UDA 1.1 §1.3.2: searches are relayed at most this many hops; 2 is the recommended default. */
export const SSDP_MULTICAST_TTL = 2

/**
 * What we search for, most capable first. Routers differ in which search targets they answer
 * (miniupnpd built with UPNP_STRICT ignores an IGD:2 search when it runs as IGD:1), so we ask for
 * both device versions and the three connection services.
 */
export const IGD_SEARCH_TARGETS: readonly string[] = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1'
]

/**
 * When the M-SEARCH round is (re)sent, in ms from the start of the search. UDP on a LAN rarely
 * drops, so the first repeat comes soon (100 ms, about twice a typical router's answer time) to
 * cover a lost datagram quickly; the gaps then double so a silent network is not flooded
 * (UDA 1.1 §1.3.2 asks control points to repeat searches, a few times, spaced out).
 */
export const SSDP_SEARCH_SCHEDULE: readonly number[] = [0, 100, 300, 700, 1_500, 3_100]

/** Between two datagrams of one search round, in ms (see the search's send loop for why). */
export const SSDP_DATAGRAM_SPACING = 1

/** MX sent with each search: the longest a device may delay its answer, in seconds (UDA 1.1 §1.3.2, 1 to 5). */
export const SSDP_MX_SECONDS = 1

/** Largest SSDP datagram we read: answers are a few hundred bytes; a UDP datagram on a LAN fits in 8 KiB. */
export const MAX_SSDP_DATAGRAM_BYTES = 8_192

/** Most header lines read from one SSDP answer (miniupnpd sends 10). */
export const MAX_SSDP_HEADERS = 32

/** Longest SSDP header line or LOCATION URL accepted. */
export const MAX_SSDP_LINE_LENGTH = 1_024

/** Most datagrams from the gateway one search parses before it stops listening (6 rounds × 10 searches ≈ 60 answers). */
export const MAX_SSDP_REPLIES = 128

/** Most distinct description URLs one search hands on. */
export const MAX_SSDP_LOCATIONS = 8

/** Largest device description accepted (real ones are 2 to 10 KiB). */
export const MAX_DESCRIPTION_BYTES = 65_536

/** Largest SOAP response accepted (real ones are under 1 KiB). */
export const MAX_SOAP_RESPONSE_BYTES = 16_384

/** Largest HTTP response head (status line and headers). */
export const MAX_HTTP_HEADER_BYTES = 8_192

/** Most HTTP header lines accepted in one response. */
export const MAX_HTTP_HEADERS = 64

/** WANIPConnection:2 §2.3.18: the longest lease an IGDv2 gateway grants (one week), in seconds. */
export const IGD2_MAX_LEASE_SECONDS = 604_800

/**
 * Requests in flight toward one gateway at once. Several consumer routers (and miniupnpd on
 * small CPUs) fail or drop parallel SOAP requests; two keeps a renewal from waiting behind another.
 */
export const DEFAULT_UPNP_CONCURRENCY = 2

/** How many other external ports an IGDv1 gateway is asked for after a conflict (718/729). */
export const MAX_PORT_ATTEMPTS = 4

/** Lowest external port picked at random after a conflict: privileged ports are often refused. */
export const MIN_RANDOM_EXTERNAL_PORT = 1_024
