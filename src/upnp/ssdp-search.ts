/**
 * SSDP search I/O: sends M-SEARCH rounds to the gateway (unicast, UDA 2.0 §1.3.2) and, unless
 * told not to, to the multicast group, repeats them on a schedule, and hands on each distinct,
 * trusted description URL the moment its answer arrives. There is no fixed listening window:
 * the caller stops the search (through `signal`) as soon as it has what it needs.
 */
import type dgram from 'node:dgram'
import { addressScope, isIP } from '../net/ip-address.js'
import { loadDgram } from '../net/dgram.js'
import { wireChannel, wireTracer, type WireMessage } from '../core/trace.js'
import { NetworkError, PortUnreachableError } from '../errors.js'
import {
  IGD_SEARCH_TARGETS,
  MAX_SSDP_LOCATIONS,
  MAX_SSDP_REPLIES,
  SSDP_MULTICAST_IPV4,
  SSDP_MULTICAST_TTL,
  SSDP_DATAGRAM_SPACING,
  SSDP_SEARCH_SCHEDULE
} from './constants.js'
import { decodeSearchResponse, encodeSearchRequest, type SearchResponse } from './ssdp.js'
import { hostOf, pointAtGateway, sameAddress } from './trust.js'

export interface SsdpSearchOptions {
  /** The gateway: searches go to it, and only its answers are accepted. */
  gateway: string
  /** Our address on the gateway's link; multicast leaves through it. */
  localAddress?: string
  /** UDP port searched on the gateway and the multicast group. */
  port: number
  /**
   * Also search the multicast group (IPv4 only: IPv6 link-local multicast needs an interface
   * scope we do not know). Routers differ in whether they answer unicast or multicast searches.
   */
  multicast: boolean
  /** Offsets in ms from the start at which a search round is sent. */
  schedule?: readonly number[]
  /** Search targets (ST) sent in each round. */
  searchTargets?: readonly string[]
  /** Ends the search: the socket is closed and the timers cleared. */
  signal: AbortSignal
  /**
   * A new description URL from the gateway. `location` already points at the gateway;
   * `announced` is the LOCATION as the gateway wrote it.
   */
  onLocation: (location: URL, announced: URL, response: SearchResponse) => void
  /** A datagram from the gateway that was not a usable answer, or a socket failure. */
  onProblem?: (error: Error) => void
  /** The gateway answered a unicast search with ICMP port unreachable: nothing listens on its SSDP port. */
  onRefused?: (error: PortUnreachableError) => void
}

/** Starts a search that runs until `options.signal` aborts. Never throws: failures go to `onProblem`. */
export function startSsdpSearch (options: SsdpSearchOptions): void {
  // node:dgram through loadDgram, not an ES import: every builtin an ES module imports is one more
  // module job and facade for the loader, and this module loads while the PCP probe is answered.
  // It is in memory by now (the gateway lookup opened a socket): the search starts a microtask later.
  loadDgram().then((dgram) => { search(dgram, options) }, (error: unknown) => {
    options.onProblem?.(new NetworkError(`SSDP search: cannot load node:dgram: ${String(error)}`, { cause: error }))
  })
}

function search (dgram: typeof import('node:dgram'), options: SsdpSearchOptions): void {
  const { signal } = options
  if (signal.aborted) return
  const gatewayFamily = isIP(options.gateway) === 6 ? 6 : 4
  const socket = dgram.createSocket(gatewayFamily === 6 ? 'udp6' : 'udp4')
  const schedule = options.schedule ?? SSDP_SEARCH_SCHEDULE
  const datagrams = searchRound(options, gatewayFamily)
  const trace = wireTracer('upnp', `${options.gateway}:${options.port}`)
  const seen = new Set<string>()
  let replies = 0
  let ignored = 0
  let round = 0
  let timer: NodeJS.Timeout | undefined
  let sending: NodeJS.Timeout | undefined
  let closed = false

  // The search socket is unconnected (answers may come from any port of the gateway), so the
  // kernel keeps ICMP errors from it. One extra search over a connected socket learns whether the
  // gateway refuses: every SSDP server we know of (miniupnpd, libupnp) binds the port on all
  // addresses, so a refused unicast search means no UPnP here, known in a round trip instead of
  // at discovery's timeout.
  const refusalProbe = options.onRefused === undefined ? undefined : dgram.createSocket(gatewayFamily === 6 ? 'udp6' : 'udp4')

  const close = (): void => {
    if (closed) return
    closed = true
    if (timer !== undefined) clearTimeout(timer)
    if (sending !== undefined) clearTimeout(sending)
    signal.removeEventListener('abort', close)
    try { socket.close() } catch { /* closed by an error already */ }
    try { refusalProbe?.close() } catch { /* closed by an error already */ }
  }
  signal.addEventListener('abort', close, { once: true })

  // A round goes out one datagram every SSDP_DATAGRAM_SPACING ms, not as one burst. The gateway
  // answers every protocol from one loop (miniupnpd does), and each M-SEARCH costs it time before
  // it gets to the PCP or NAT-PMP request that came with it: with the round of ten sent at once,
  // its PCP answer came 1.5 ms later than without (0.26 ms); spaced, the first answer that ends
  // discovery usually comes before the rest of the round is sent, and then it never is. A router
  // takes tens of ms to answer a search anyway, so the spacing costs the UPnP search nothing
  // unless only a late datagram of the round is answered. A round that falls due while the last
  // one is still going out queues behind it rather than cutting it short: every round is the same
  // datagrams in the same order, so the queue is a count and a position.
  let unsent = 0
  let position = 0
  const sendNext = (): void => {
    sending = undefined
    const next = datagrams[position]
    if (closed || unsent === 0 || next === undefined) return
    position = (position + 1) % datagrams.length
    unsent--
    const { address, port, datagram } = next
    socket.send(datagram, port, address, (error) => {
      // A missing multicast route (ENETUNREACH) must not stop the unicast search.
      if (error !== null && error !== undefined && !closed) {
        options.onProblem?.(new NetworkError(`SSDP search to ${address}:${port} failed: ${error.message}`, { cause: error }))
      }
    })
    // Traced once sent: a subscriber may end the search (and close the socket) as it looks.
    trace('send', datagram)
    if (unsent > 0 && !closed) sending = setTimeout(sendNext, SSDP_DATAGRAM_SPACING)
  }
  const sendRound = (): void => {
    if (closed) return
    unsent += datagrams.length
    if (sending === undefined) sendNext()
    round++
    const at = schedule[round]
    const previous = schedule[round - 1] ?? 0
    if (at !== undefined) timer = setTimeout(sendRound, Math.max(0, at - previous))
  }

  socket.on('error', (error) => {
    if (closed) return
    options.onProblem?.(new NetworkError(`SSDP socket failed: ${error.message}`, { cause: error }))
    close()
  })
  const onAnswer = (datagram: Buffer, remote: dgram.RemoteInfo): void => {
    // Only the gateway is trusted; other hosts' answers are dropped unread, which costs nothing.
    // That includes a router pair (CARP/VRRP) answering from its own address rather than the
    // shared one (tailscale #5502): nothing in the answer proves it is the router, and the LAN
    // can say anything. --verbose shows the first few, with the reason.
    if (closed) return
    if (!sameAddress(remote.address, options.gateway)) {
      if (wireChannel.hasSubscribers && ignored++ < MAX_IGNORED_TRACED) {
        wireChannel.publish({ protocol: 'upnp', direction: 'receive', peer: `${remote.address}:${remote.port}`, bytes: datagram,
          ignored: `not from the gateway ${options.gateway} (answers from other addresses, such as a CARP/VRRP router's own one, are not trusted)` } satisfies WireMessage)
      }
      return
    }
    // A gateway that keeps talking cannot keep us parsing: past the cap, stop listening.
    if (++replies > MAX_SSDP_REPLIES) { close(); return }
    trace('receive', datagram)
    let response: SearchResponse
    try {
      response = decodeSearchResponse(datagram)
    } catch (error) {
      options.onProblem?.(error as Error)
      return
    }
    const announced = response.location
    const location = sameAddress(hostOf(announced), options.gateway) ? announced : pointAtGateway(announced, options.gateway)
    if (seen.has(location.href) || seen.size >= MAX_SSDP_LOCATIONS) return
    seen.add(location.href)
    options.onLocation(location, announced, response)
  }
  socket.on('message', onAnswer)
  if (refusalProbe !== undefined) {
    refusalProbe.on('message', onAnswer)
    refusalProbe.on('error', (error: NodeJS.ErrnoException) => {
      if (closed) return
      if (error.code === 'ECONNREFUSED') {
        options.onRefused?.(new PortUnreachableError(`${options.gateway}:${options.port} is not listening for SSDP (ICMP port unreachable)`, { cause: error }))
      }
      try { refusalProbe.close() } catch { /* already closed */ }
    })
    const first = datagrams[0]?.datagram
    refusalProbe.connect(options.port, options.gateway, () => {
      if (closed || first === undefined) return
      trace('send', first)
      refusalProbe.send(first)
    })
  }
  socket.bind(0, () => {
    if (closed) return
    if (datagrams.some((outgoing) => outgoing.multicast)) {
      try {
        socket.setMulticastTTL(SSDP_MULTICAST_TTL)
        if (options.localAddress !== undefined && isIP(options.localAddress) === 4) socket.setMulticastInterface(options.localAddress)
      } catch (error) {
        options.onProblem?.(new NetworkError(`cannot set up SSDP multicast: ${(error as Error).message}`, { cause: error }))
      }
    }
    const first = schedule[0] ?? 0
    if (first > 0) timer = setTimeout(sendRound, first)
    else sendRound()
  })
}

/** Answers from other hosts shown to --verbose per search; the rest are dropped unseen. */
const MAX_IGNORED_TRACED = 8

/** One datagram of a search round and where it goes. */
interface Outgoing {
  address: string
  port: number
  multicast: boolean
  datagram: Uint8Array
}

/**
 * Rounds already encoded, by destination (gateway, port, multicast or not), for the standard
 * search targets: every discovery searches again, and the same gateway gets the same datagrams.
 * Bounded: a host meets few gateways, and a full cache simply starts again.
 */
const encodedRounds = new Map<string, readonly Outgoing[]>()
const MAX_ENCODED_ROUNDS = 8

/** The datagrams of one search round, in order: every search target to the gateway, then to the multicast group. */
function searchRound (options: SsdpSearchOptions, family: 4 | 6): readonly Outgoing[] {
  const key = options.searchTargets === undefined ? `${options.gateway} ${options.port} ${options.multicast ? 'm' : 'u'}` : undefined
  const known = key === undefined ? undefined : encodedRounds.get(key)
  if (known !== undefined) return known
  // A gateway on loopback (a test double, a local daemon) has no link to multicast on.
  const multicast = options.multicast && family === 4 && addressScope(options.gateway) !== 'loopback'
  const destinations = [{ address: options.gateway, port: options.port, multicast: false }]
  if (multicast) destinations.push({ address: SSDP_MULTICAST_IPV4, port: options.port, multicast: true })
  const round = destinations.flatMap((destination) => (options.searchTargets ?? IGD_SEARCH_TARGETS).map((searchTarget) =>
    ({ ...destination, datagram: encodeSearchRequest({ searchTarget, address: destination.address, port: destination.port }) })))
  if (key !== undefined) {
    if (encodedRounds.size >= MAX_ENCODED_ROUNDS) encodedRounds.clear()
    encodedRounds.set(key, round)
  }
  return round
}
