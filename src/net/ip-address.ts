/**
 * IP address helpers shared by the protocols: the 4-byte IPv4 form NAT-PMP carries, the 16-byte
 * field PCP carries for both families, and the scope of an address (is it public?).
 *
 * Pure functions over strings and `Uint8Array`; invalid input throws `InvalidArgumentError`.
 */

import { InvalidArgumentError } from '../errors.js'

/**
 * What kind of address this is, from the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * (RFC 6890). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) has the scope of its IPv4 address.
 */
export type AddressScope =
  /** Globally reachable unicast. */
  | 'public'
  /** RFC 1918 IPv4 space, RFC 4193 unique local IPv6 (fc00::/7), RFC 8215 local-use NAT64. */
  | 'private'
  /** RFC 6598 shared address space (100.64.0.0/10): a carrier-grade NAT is upstream. */
  | 'shared'
  | 'loopback'
  | 'link-local'
  /** 0.0.0.0 and `::`. */
  | 'unspecified'
  | 'multicast'
  /** 255.255.255.255. */
  | 'broadcast'
  /** RFC 5737 (192.0.2.0/24 ...), RFC 3849 (2001:db8::/32), RFC 9637 (3fff::/20). */
  | 'documentation'
  /** RFC 2544 (198.18.0.0/15), RFC 5180 (2001:2::/48). */
  | 'benchmarking'
  /** Reserved, deprecated or unallocated: not usable as a host's address on the Internet. */
  | 'reserved'

export const IPV4_SIZE = 4
export const IPV6_SIZE = 16

/** A dotted quad of decimal octets, no leading zeros (the form node's isIPv4 accepts). */
const IPV4_TEXT = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/
/**
 * The longest address text accepted: 45 characters of IPv6 with a dotted quad, plus a zone (an
 * interface name is at most 15 characters on Linux, 10 digits as an index). node:net has no bound.
 */
export const MAX_IP_TEXT_LENGTH = 64
/** An IPv6 zone index (`%eth0`, `%3`). */
const ZONE_TEXT = /^%[0-9A-Za-z.:-]+$/

/*
 * Address validation of our own instead of node:net's isIP family: importing node:net costs a
 * program ~5 ms at start-up, and only the UPnP HTTP client needs sockets from it.
 */

/** True for an IPv4 address in dotted-quad form. */
export function isIPv4 (addr: string): boolean {
  return typeof addr === 'string' && IPV4_TEXT.test(addr)
}

/** True for an IPv6 address in any RFC 4291 §2.2 text form, with an optional zone. */
export function isIPv6 (addr: string): boolean {
  return typeof addr === 'string' && tryParseIPv6(addr) !== undefined
}

/** 4 or 6 for an IP address of that family, 0 for anything else (as node's isIP). */
export function isIP (addr: string): 0 | 4 | 6 {
  return isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0
}

/** RFC 4291 §2.5.5.2: the first 12 bytes of an IPv4-mapped IPv6 address. */
const IPV4_MAPPED_PREFIX = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff)

/** The 4 bytes of a dotted-quad IPv4 address. */
export function encodeIPv4 (addr: string): Uint8Array {
  if (!isIPv4(addr)) {
    throw new InvalidArgumentError(`not an IPv4 address: ${JSON.stringify(addr)}`)
  }
  const parts = addr.split('.')
  return Uint8Array.of(Number(parts[0]), Number(parts[1]), Number(parts[2]), Number(parts[3]))
}

/** The dotted quad held in the 4 bytes at `offset`. */
export function decodeIPv4 (bytes: Uint8Array, offset = 0): string {
  checkSpan(bytes, offset, IPV4_SIZE)
  return bytes.subarray(offset, offset + IPV4_SIZE).join('.')
}

/**
 * The 16-byte address field PCP uses for both families (RFC 6887 §5): an IPv6 address as is, an
 * IPv4 address as the IPv4-mapped `::ffff:a.b.c.d`. A zone (`fe80::1%eth0`) is dropped: it names
 * one of our interfaces and has no place on the wire.
 */
export function encodeIPv6Field (addr: string): Uint8Array {
  if (isIPv4(addr)) {
    const field = new Uint8Array(IPV6_SIZE)
    field.set(IPV4_MAPPED_PREFIX)
    field.set(encodeIPv4(addr), IPV4_MAPPED_PREFIX.length)
    return field
  }
  return parseIPv6(addr)
}

/**
 * The address in the 16-byte field at `offset`: an IPv4-mapped address as its dotted quad (that
 * is how PCP carries IPv4, RFC 6887 §5), any other in RFC 5952 canonical text form.
 */
export function decodeIPv6Field (bytes: Uint8Array, offset = 0): string {
  checkSpan(bytes, offset, IPV6_SIZE)
  const field = bytes.subarray(offset, offset + IPV6_SIZE)
  if (hasIPv4MappedPrefix(field)) {
    return decodeIPv4(field, IPV4_MAPPED_PREFIX.length)
  }
  return formatIPv6(field)
}

/** True for an IPv6 address in ::ffff:0:0/96, which stands for an IPv4 address (RFC 4291 §2.5.5.2). */
export function isIPv4Mapped (addr: string): boolean {
  if (isIPv4(addr)) {
    return false
  }
  return hasIPv4MappedPrefix(parseIPv6(addr))
}

/** True when both strings name the same address, whatever their spelling (`::ffff:10.0.0.1` and `10.0.0.1` do). */
export function sameAddress (a: string, b: string): boolean {
  // The common case (a reply from the address we sent to) costs one comparison.
  if (a === b) return true
  const left = encodeIPv6Field(a)
  const right = encodeIPv6Field(b)
  return left.every((byte, index) => byte === right[index])
}

/** The address's scope; see `AddressScope`. */
export function addressScope (addr: string): AddressScope {
  const field = encodeIPv6Field(addr)
  let best: SpecialPurposeBlock | undefined
  for (const block of specialPurposeBlocks(hasIPv4MappedPrefix(field) ? 'IPv4' : 'IPv6')) {
    if ((best === undefined || block.prefixLength > best.prefixLength) && inBlock(field, block)) {
      best = block
    }
  }
  // Outside every listed block: IPv6 space that is neither 2000::/3 nor special is unallocated.
  return best?.scope ?? 'reserved'
}

/** True when the address is globally reachable unicast: the gateway's external address is public. */
export function isPubliclyRoutable (addr: string): boolean {
  return addressScope(addr) === 'public'
}

function checkSpan (bytes: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > bytes.length) {
    throw new InvalidArgumentError(`${length} address bytes at offset ${offset} do not fit in ${bytes.length} bytes`)
  }
}

/** Whether a 16-byte address field holds an IPv4-mapped address (::ffff:a.b.c.d). */
export function hasIPv4MappedPrefix (field: Uint8Array): boolean {
  return IPV4_MAPPED_PREFIX.every((byte, index) => field[index] === byte)
}

/** RFC 4291 §2.2 text forms, validated by node's `isIPv6` first; the checks here are a second line. */
function parseIPv6 (addr: string): Uint8Array {
  const field = tryParseIPv6(addr)
  if (field === undefined) throw new InvalidArgumentError(`not an IP address: ${JSON.stringify(addr)}`)
  return field
}

function tryParseIPv6 (addr: string): Uint8Array | undefined {
  if (addr.length > MAX_IP_TEXT_LENGTH || !addr.includes(':')) return undefined
  const zoneStart = addr.indexOf('%')
  if (zoneStart !== -1 && !ZONE_TEXT.test(addr.slice(zoneStart))) return undefined
  let text = zoneStart === -1 ? addr : addr.slice(0, zoneStart)

  // A trailing dotted quad (`::ffff:1.2.3.4`) is the last 32 bits: two zero groups stand in for
  // it while the groups are counted, and its bytes are written over them at the end.
  const lastColon = text.lastIndexOf(':')
  const dottedQuad = text.slice(lastColon + 1)
  if (dottedQuad.includes('.') && !isIPv4(dottedQuad)) return undefined
  const embeddedIPv4 = dottedQuad.includes('.') ? encodeIPv4(dottedQuad) : undefined
  if (embeddedIPv4 !== undefined) {
    text = `${text.slice(0, lastColon + 1)}0:0`
  }

  const halves = text.split('::')
  const head = splitGroups(halves[0])
  const rest = splitGroups(halves[1])
  const elided = 8 - head.length - rest.length
  if (halves.length > 2 || (halves.length === 1 && elided !== 0) || (halves.length === 2 && elided < 1)) {
    return undefined
  }
  const groups = [...head, ...Array<string>(elided).fill('0'), ...rest]
  const field = new Uint8Array(IPV6_SIZE)
  const view = new DataView(field.buffer)
  for (const [index, group] of groups.entries()) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined
    view.setUint16(index * 2, Number.parseInt(group, 16))
  }
  if (embeddedIPv4 !== undefined) {
    field.set(embeddedIPv4, IPV6_SIZE - IPV4_SIZE)
  }
  return field
}

function splitGroups (text: string | undefined): string[] {
  return text === undefined || text === '' ? [] : text.split(':')
}

/**
 * RFC 5952 §4: lowercase hex without leading zeros; the longest run of two or more zero groups
 * (the first of equally long runs) becomes `::`; a single zero group stays `0`.
 */
function formatIPv6 (field: Uint8Array): string {
  const view = new DataView(field.buffer, field.byteOffset, field.byteLength)
  const groups = Array.from({ length: 8 }, (_, index) => view.getUint16(index * 2))

  let bestStart = -1
  let bestLength = 1
  for (let start = 0; start < groups.length;) {
    let end = start
    while (end < groups.length && groups[end] === 0) {
      end++
    }
    if (end - start > bestLength) {
      bestStart = start
      bestLength = end - start
    }
    start = end === start ? start + 1 : end
  }

  const hex = (part: number[]): string => part.map((group) => group.toString(16)).join(':')
  if (bestStart === -1) {
    return hex(groups)
  }
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`
}

interface SpecialPurposeBlock {
  /** The block's first address as a 16-byte field (IPv4 blocks as IPv4-mapped). */
  prefix: Uint8Array
  /** In bits of the 16-byte field (an IPv4 /n is /96+n). */
  prefixLength: number
  scope: AddressScope
}

/**
 * Parsed on first use, not at import (most programs classify an address or two, if any), and per
 * family: no IPv6 block contains an IPv4-mapped address, nor an IPv4 block any other, so an IPv4
 * program never parses (or compiles the parser of) the IPv6 ones.
 */
const parsedBlocks: Partial<Record<'IPv4' | 'IPv6', readonly SpecialPurposeBlock[]>> = {}
function specialPurposeBlocks (family: 'IPv4' | 'IPv6'): readonly SpecialPurposeBlock[] {
  parsedBlocks[family] ??= SPECIAL_PURPOSE_BLOCK_TEXT[family].map(([cidr, scope]) => parseBlock(cidr, scope))
  return parsedBlocks[family]
}

/**
 * The IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and updates), reduced to
 * scopes. The most specific block containing an address decides, so exceptions inside a block
 * (globally reachable anycast addresses inside the IETF protocol assignment blocks) simply
 * appear as longer prefixes.
 */
const SPECIAL_PURPOSE_BLOCK_TEXT: Record<'IPv4' | 'IPv6', ReadonlyArray<readonly [string, AddressScope]>> = {
  // IPv4 (as IPv4-mapped). 0.0.0.0/0 makes every IPv4 address not listed below public.
  IPv4: [
    ['0.0.0.0/0', 'public'],
    ['0.0.0.0/8', 'reserved'], // "this network", RFC 791
    ['0.0.0.0/32', 'unspecified'],
    ['10.0.0.0/8', 'private'], // RFC 1918
    ['100.64.0.0/10', 'shared'], // RFC 6598
    ['127.0.0.0/8', 'loopback'], // RFC 1122
    ['169.254.0.0/16', 'link-local'], // RFC 3927
    ['172.16.0.0/12', 'private'], // RFC 1918
    ['192.0.0.0/24', 'reserved'], // IETF protocol assignments, RFC 6890
    ['192.0.0.9/32', 'public'], // PCP anycast, RFC 7723: globally reachable
    ['192.0.0.10/32', 'public'], // TURN anycast, RFC 8155: globally reachable
    ['192.0.2.0/24', 'documentation'], // TEST-NET-1, RFC 5737
    ['192.88.99.0/24', 'reserved'], // deprecated 6to4 relay anycast, RFC 7526
    ['192.168.0.0/16', 'private'], // RFC 1918
    ['198.18.0.0/15', 'benchmarking'], // RFC 2544
    ['198.51.100.0/24', 'documentation'], // TEST-NET-2, RFC 5737
    ['203.0.113.0/24', 'documentation'], // TEST-NET-3, RFC 5737
    ['224.0.0.0/4', 'multicast'], // RFC 5771
    ['240.0.0.0/4', 'reserved'], // RFC 1112
    ['255.255.255.255/32', 'broadcast'] // RFC 919
  ],
  // IPv6. Only 2000::/3 is allocated global unicast (RFC 4291); the rest defaults to reserved.
  IPv6: [
    ['::/128', 'unspecified'],
    ['::1/128', 'loopback'],
    ['64:ff9b::/96', 'public'], // NAT64 well-known prefix, RFC 6052: globally reachable
    ['64:ff9b:1::/48', 'private'], // local-use NAT64, RFC 8215
    ['100::/64', 'reserved'], // discard-only, RFC 6666
    ['2000::/3', 'public'],
    ['2001::/23', 'reserved'], // IETF protocol assignments, RFC 2928 (includes Teredo, ORCHID)
    ['2001:1::1/128', 'public'], // PCP anycast, RFC 7723
    ['2001:1::2/128', 'public'], // TURN anycast, RFC 8155
    ['2001:2::/48', 'benchmarking'], // RFC 5180
    ['2001:3::/32', 'public'], // AMT, RFC 7450
    ['2001:4:112::/48', 'public'], // AS112-v6, RFC 7535
    ['2001:db8::/32', 'documentation'], // RFC 3849
    ['3fff::/20', 'documentation'], // RFC 9637
    ['fc00::/7', 'private'], // unique local, RFC 4193
    ['fe80::/10', 'link-local'], // RFC 4291
    ['fec0::/10', 'reserved'], // deprecated site-local, RFC 3879
    ['ff00::/8', 'multicast'] // RFC 4291
  ]
}

function parseBlock (cidr: string, scope: AddressScope): SpecialPurposeBlock {
  const [address = '', length = ''] = cidr.split('/')
  const familyOffset = isIPv4(address) ? 96 : 0
  return { prefix: encodeIPv6Field(address), prefixLength: familyOffset + Number(length), scope }
}

function inBlock (field: Uint8Array, block: SpecialPurposeBlock): boolean {
  return sameLeadingBits(field, block.prefix, block.prefixLength)
}

/** Whether two IPv6 addresses share their first `prefixLength` bits (are in one /prefixLength). Zones are ignored. */
export function samePrefix (a: string, b: string, prefixLength: number): boolean {
  return sameLeadingBits(parseIPv6(a), parseIPv6(b), Math.max(0, Math.min(128, prefixLength)))
}

function sameLeadingBits (left: Uint8Array, right: Uint8Array, bits: number): boolean {
  const wholeBytes = Math.floor(bits / 8)
  for (let index = 0; index < wholeBytes; index++) {
    if (left[index] !== right[index]) {
      return false
    }
  }
  const leftoverBits = bits % 8
  if (leftoverBits === 0) {
    return true
  }
  const mask = (0xff << (8 - leftoverBits)) & 0xff
  return ((left[wholeBytes] ?? 0) & mask) === ((right[wholeBytes] ?? 0) & mask)
}
