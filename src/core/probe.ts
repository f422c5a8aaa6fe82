import { PCP_SERVER_PORT } from '../constants.js'
import { AbortError, NoDefaultGatewayError, NoNATFoundError, TimeoutError, type WireProtocol } from '../errors.js'
import { monotonicMs } from '../net/clock.js'
import { chooseSourceAddress6, readInterfaceAddresses6 } from '../net/default-gateway6.js'
import { routeToInternet, routeToInternet6, type KernelRoute } from '../net/route-to-internet.js'
import { sameAddress } from '../net/ip-address.js'
import type { Socket } from 'node:dgram'
import { closeQuietly, connectedSocket, localAddressFacing } from '../net/udp-channel.js'
import type { ResolvedDiscoverOptions } from '../options.js'
import { SETTLED, withDeadline } from './deadline.js'
import type { GatewayClient, NatType, ProbeContext, ProbeRegistry } from './gateway-client.js'

/** What discovery found: a ready client, and the external address if the probe already asked. */
export interface DiscoveredGateway {
  client: GatewayClient
  externalAddress?: string
}

/** Lower is preferred: PCP, then NAT-PMP, then IGDv2, then IGDv1. */
const TYPE_RANK: Record<NatType, number> = { pcp: 0, 'nat-pmp': 1, 'upnp-igd2': 2, 'upnp-igd1': 3 }
/** The best type a still-running probe could yield. */
const PROBE_BEST_RANK: Record<WireProtocol, number> = { pcp: 0, 'nat-pmp': 1, upnp: 2 }

/** What one protocol's probe found, for `probeGateway()`. */
export interface ProbeReport {
  /** The protocol probed. */
  protocol: WireProtocol
  /** The NAT type found, when the probe succeeded. */
  type?: NatType
  /** Milliseconds from the start of probing to the probe's answer or failure. */
  ms: number
  /** Why the probe failed, when it did. */
  error?: Error
}

/**
 * Runs every enabled probe to its end (instead of stopping at the first answer) and reports each,
 * for diagnostics such as the CLI's `discover` (probeGateway()). Nothing is left open afterwards.
 */
export async function probeEach ({ gateway, localAddress }: GatewayLocation, resolved: ResolvedDiscoverOptions, registry: ProbeRegistry): Promise<ProbeReport[]> {
  const started = monotonicMs()
  return await Promise.all(familyProtocols(resolved).map(async (protocol): Promise<ProbeReport> => {
    const probe = registry(protocol, resolved.family)
    try {
      const client = await withDeadline(`${protocol} probe`, { timeout: resolved.timeout, ...(resolved.signal === undefined ? {} : { signal: resolved.signal }) },
        async (signal) => await probe(probeContext({ gateway, localAddress }, resolved, signal)))
      const ms = monotonicMs() - started
      await client.close()
      return { protocol, type: client.type, ms }
    } catch (error) {
      return { protocol, ms: monotonicMs() - started, error: error instanceof Error ? error : new Error(String(error)) }
    }
  }))
}

/** Where the gateway is and which of our addresses faces it. */
export interface GatewayLocation {
  gateway: string
  localAddress: string
  /**
   * With `keepSocket` (IPv4): the socket connected to the gateway's port 5351 that told us our
   * address, for a probe to adopt (ProbeContext.takeSocket). raceProbes() closes it if no probe did.
   */
  socket?: Socket
  /** The route the gateway was found on; undefined when the options named the gateway. */
  route?: KernelRoute
}

/**
 * The gateway from the options, or the next hop of the route the kernel uses to the Internet; and
 * our address facing it. `keepSocket`: keep the socket that found the address (see
 * GatewayLocation.socket).
 */
export async function locateGateway (options: ResolvedDiscoverOptions, keepSocket = false): Promise<GatewayLocation> {
  if (options.family === 'IPv6') return await locateGateway6(options)
  if (options.gateway !== undefined) {
    const gateway = options.gateway
    if (!keepSocket) return { gateway, localAddress: await localAddressFacing(gateway, PCP_SERVER_PORT) }
    return { gateway, ...await connectedSocket(gateway, PCP_SERVER_PORT) }
  }
  const { route, socket, localAddress } = await routeToInternet(PCP_SERVER_PORT)
  if (!keepSocket) closeQuietly(socket)
  return { gateway: route.gateway, localAddress, route, ...(keepSocket ? { socket } : {}) }
}

/**
 * IPv6: the next hop of the route the kernel uses to the Internet, and the host's stable global address (what a pinhole opens
 * to). The kernel's choice toward the gateway is kept when it is global and not temporary (with a
 * link-local gateway it is link-local; with privacy extensions it may be temporary): otherwise a
 * stable global address on the route's interface is chosen from /proc/net/if_inet6.
 */
async function locateGateway6 (options: ResolvedDiscoverOptions): Promise<GatewayLocation> {
  const found = options.gateway === undefined ? await routeToInternet6() : undefined
  const route = found?.route
  const gateway = options.gateway ?? route?.gateway ?? ''
  const facing = await localAddressFacing(gateway, PCP_SERVER_PORT)
  const addresses = found === undefined ? await readInterfaceAddresses6() : found.addresses
  const entry = addresses?.find((a) => sameAddress(a.address, facing))
  if (addresses === undefined || (entry !== undefined && entry.global && !entry.unusable && (!entry.temporary || options.allowTemporaryAddress))) {
    // Where address flags cannot be read (macOS, the BSDs, Windows), a link-local gateway makes
    // the kernel pick a link-local address toward it: take its pick toward the Internet instead.
    const localAddress = /^fe[89ab]/i.test(facing) && addresses === undefined ? route?.localAddress ?? facing : facing
    if (/^fe[89ab]/i.test(localAddress)) throw new NoDefaultGatewayError(`no global IPv6 address faces ${gateway}`)
    return { gateway, localAddress, ...(route === undefined ? {} : { route }) }
  }
  const chosen = chooseSourceAddress6(addresses, route?.interfaceName ?? entry?.interfaceName, options.allowTemporaryAddress)
  if (chosen === undefined) {
    throw new NoDefaultGatewayError(`no ${options.allowTemporaryAddress ? '' : 'stable '}global IPv6 address faces ${gateway}`)
  }
  return { gateway, localAddress: chosen, ...(route === undefined ? {} : { route }) }
}

/**
 * Probes every enabled protocol at once. The first valid answer wins unless a more preferred
 * protocol is still running, in which case this waits at most `preferenceWindow` for it. A probe
 * that is refused (ICMP port unreachable) counts as a "no" at once, so nothing sits out the
 * timeout when the answer is already known.
 */
export async function raceProbes ({ gateway, localAddress, socket }: GatewayLocation, options: ResolvedDiscoverOptions, registry: ProbeRegistry): Promise<DiscoveredGateway> {
  const protocols = familyProtocols(options)
  const probing = new AbortController()
  let untaken = socket
  const context: ProbeContext = {
    ...probeContext({ gateway, localAddress }, options, probing.signal),
    takeSocket: () => {
      const taken = untaken
      untaken = undefined
      return taken
    }
  }
  /** The probes that have yet to answer or fail: the preference window waits for these. */
  const pending = new Set<WireProtocol>()
  /** The probes still at work (the timeout gives up waiting for them but does not stop them). */
  let running = 0
  const answered: GatewayClient[] = []
  const reasons: Partial<Record<WireProtocol, Error>> = {}

  return await new Promise((resolve, reject) => {
    let settled = false
    let windowTimer: NodeJS.Timeout | undefined
    const onAbort = (): void => { finish(new AbortError('discovery aborted', { cause: options.signal?.reason })) }
    const timeoutTimer = setTimeout(() => {
      for (const protocol of pending) reasons[protocol] = new TimeoutError(`no answer within ${options.timeout} ms`)
      pending.clear()
      decide(true)
    }, options.timeout)

    const finish = (outcome: GatewayClient | Error): void => {
      settled = true
      clearTimeout(timeoutTimer)
      clearTimeout(windowTimer)
      options.signal?.removeEventListener('abort', onAbort)
      if (outcome instanceof Error) {
        stopTheRest(outcome)
        reject(outcome)
        return
      }
      resolve({ client: outcome, ...externalAddressOf(outcome) })
      // After this turn of the event loop: the caller's first request, made in this turn, goes
      // out first.
      setImmediate(() => { stopTheRest(outcome) })
    }

    /**
     * Probes still running end with SETTLED: nobody reads their rejections (see SETTLED). With
     * none running, nothing listens: no abort (the first one after an idle moment costs
     * ~0.08 ms). The discovery socket no probe took and the answers that lost are closed.
     */
    const stopTheRest = (outcome: GatewayClient | Error): void => {
      if (running > 0) probing.abort(SETTLED)
      if (untaken !== undefined) closeQuietly(untaken)
      untaken = undefined
      for (const client of answered) if (client !== outcome) void client.close()
    }

    const decide = (windowOver: boolean): void => {
      if (settled) return
      const best = answered.reduce<GatewayClient | undefined>((a, b) => a === undefined || TYPE_RANK[b.type] < TYPE_RANK[a.type] ? b : a, undefined)
      const bestPending = Math.min(...[...pending].map((protocol) => PROBE_BEST_RANK[protocol]))
      if (best !== undefined && (windowOver || TYPE_RANK[best.type] < bestPending)) {
        finish(best)
      } else if (best !== undefined) {
        windowTimer ??= setTimeout(() => { decide(true) }, options.preferenceWindow)
      } else if (pending.size === 0) {
        finish(new NoNATFoundError(reasons))
      }
    }

    options.signal?.addEventListener('abort', onAbort, { once: true })
    // Every probe starts at once (a head start for the preferred one would make the others wait
    // out a fixed delay whenever it stays silent); the preference window above orders answers.
    for (const protocol of protocols) {
      pending.add(protocol)
      running++
      registry(protocol, options.family)(context).then((client) => {
        running--
        if (settled) { void client.close(); return }
        pending.delete(protocol)
        answered.push(client)
        decide(false)
      }, (error: unknown) => {
        running--
        if (settled) return
        pending.delete(protocol)
        reasons[protocol] = error instanceof Error ? error : new Error(String(error))
        decide(false)
      })
    }
    decide(false)
  })
}

/** What every probe is handed: where the gateway is, its signal, and where UPnP remembers gateways. */
function probeContext (location: GatewayLocation, options: ResolvedDiscoverOptions, signal: AbortSignal): ProbeContext {
  return {
    ...location,
    signal,
    rememberGateway: options.rememberGateway,
    ...(options.gatewayCacheFile === undefined ? {} : { cacheFile: options.gatewayCacheFile }),
    ...(options.upnpDescriptionUrl === undefined ? {} : { descriptionUrl: options.upnpDescriptionUrl })
  }
}

/** The enabled protocols for the family: on IPv6 no NAT-PMP (RFC 6886 carries IPv4 only). */
function familyProtocols (options: ResolvedDiscoverOptions): WireProtocol[] {
  return options.family === 'IPv6' ? options.protocols.filter((protocol) => protocol !== 'nat-pmp') : options.protocols
}

function externalAddressOf (client: GatewayClient): { externalAddress?: string } {
  const address = (client as { lastExternalAddress?: string }).lastExternalAddress
  return address === undefined ? {} : { externalAddress: address }
}
