/**
 * The UPnP discovery probe: SSDP search and the orchestration around it, and nothing else.
 *
 * Every protocol is probed at once, and a PCP or NAT-PMP gateway usually answers within a
 * millisecond, long before a UPnP router answers its M-SEARCH (miniupnpd waits ~50 ms on
 * purpose). So the probe's start loads only this small module and the SSDP search; the
 * description, HTTP, SOAP and client code (with saxes and node:net) is imported when the
 * gateway answers with a location, when a remembered gateway is tried, or when the search has
 * gone unanswered for UPNP_PRELOAD_DELAY. When another protocol wins first, the UPnP probe is
 * aborted having compiled none of it.
 */
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import type { GatewayClient, ProbeContext, ProtocolProbe } from '../core/gateway-client.js'
import { allowManyListeners } from '../core/limiter.js'
import { abortedBy, SETTLED } from '../core/deadline.js'
import { InvalidArgumentError, TimeoutError, UnsupportedError } from '../errors.js'
import { randomInt } from '../net/random.js'
import { DEFAULT_UPNP_CONCURRENCY, MIN_RANDOM_EXTERNAL_PORT, SSDP_PORT, SSDP_SEARCH_SCHEDULE } from './constants.js'
import type { GatewayLocation, UpnpClient } from './client.js'
import { recalledInProcess, recallGateway, rememberGateway, type Recalled } from './remembered.js'
import type { SameRouterSources } from './same-router.js'
import { startSsdpSearch } from './ssdp-search.js'
import { hostOf, sameAddress } from './trust.js'
import { isIP } from '../net/ip-address.js'
import { debug } from '../debug.js'
import { loadOnce } from '../load-once.js'

/** Internal knobs of the UPnP probe; tests use them to stay on loopback and be quick. */
export interface UpnpProbeOptions {
  /** UDP port searched on the gateway and the multicast group. Default 1900 (SSDP_PORT). */
  ssdpPort?: number
  /**
   * Also send the search to the multicast group 239.255.255.250. Default true. Tests on loopback
   * must turn it off: a multicast search leaves the host.
   */
  multicast?: boolean
  /** When search rounds are sent, in ms from the start. Default SSDP_SEARCH_SCHEDULE (0, 100, 300, 700, 1 500, 3 100). */
  searchSchedule?: readonly number[]
  /** Bound on each HTTP exchange made while probing, in ms. Default DEFAULT_REQUEST_TIMEOUT (4 000). */
  requestTimeout?: number
  /**
   * Bound on the whole probe, in ms. Default: none of its own, since ProbeContext.signal ends
   * every probe when discovery settles or times out.
   */
  timeout?: number
  /** Requests in flight toward the gateway at once. Default 2 (DEFAULT_UPNP_CONCURRENCY). */
  maxConcurrentRequests?: number
  /** Picks an external port to try after a conflict on an IGDv1 gateway. Default: uniform in 1024–65535. */
  randomPort?: () => number
  /**
   * Where the facts that an IPv6 LOCATION names the gateway's own address come from: our
   * addresses and on-link prefixes, and the neighbour table (default `ip -6 neigh show`). Without
   * it such a LOCATION is not followed. src/protocols.ts gives this host's (/proc/net/if_inet6):
   * the module that reads them loads with the package, and importing it here would split it
   * from there into a chunk of its own.
   */
  sameRouter?: SameRouterSources
}

export interface ResolvedUpnpProbeOptions {
  ssdpPort: number
  multicast: boolean
  searchSchedule: readonly number[]
  requestTimeout: number
  timeout: number | undefined
  maxConcurrentRequests: number
  randomPort: () => number
  sameRouter: SameRouterSources | undefined
}


/** Validates the probe options once, naming the bad one, and fills in defaults. */
export function resolveUpnpProbeOptions (options: UpnpProbeOptions = {}): ResolvedUpnpProbeOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('upnp probe options must be an object')
  const schedule = options.searchSchedule ?? SSDP_SEARCH_SCHEDULE
  if (!Array.isArray(schedule) || schedule.length === 0 || !schedule.every((at, index) => Number.isFinite(at) && at >= 0 && at >= (schedule[index - 1] ?? 0))) {
    throw new InvalidArgumentError('searchSchedule must be a non-empty list of non-decreasing, non-negative milliseconds')
  }
  if (options.multicast !== undefined && typeof options.multicast !== 'boolean') throw new InvalidArgumentError('multicast must be a boolean')
  if (options.randomPort !== undefined && typeof options.randomPort !== 'function') throw new InvalidArgumentError('randomPort must be a function')
  return {
    ssdpPort: checkInteger(options.ssdpPort, 'ssdpPort', SSDP_PORT, 1, 65_535),
    multicast: options.multicast ?? true,
    searchSchedule: [...schedule],
    requestTimeout: checkInteger(options.requestTimeout, 'requestTimeout', DEFAULT_REQUEST_TIMEOUT, 1, 600_000),
    timeout: options.timeout === undefined ? undefined : checkInteger(options.timeout, 'timeout', 0, 1, 600_000),
    maxConcurrentRequests: checkInteger(options.maxConcurrentRequests, 'maxConcurrentRequests', DEFAULT_UPNP_CONCURRENCY, 1, 64),
    randomPort: options.randomPort ?? (() => randomInt(MIN_RANDOM_EXTERNAL_PORT, 65_536)),
    sameRouter: options.sameRouter
  }
}

export function checkInteger (value: number | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

/** A ProtocolProbe that says it finds a UpnpClient (the pinhole probe asks it for the firewall service). */
export type UpnpProbe = (context: ProbeContext) => Promise<UpnpClient>

/** A UPnP probe with internal options (tests: `createUpnpProbe({ ssdpPort, multicast: false })`). */
export function createUpnpProbe (options: UpnpProbeOptions = {}): UpnpProbe {
  const resolved = resolveUpnpProbeOptions(options)
  return async (context) => await probeUpnp(context, resolved)
}

/** The production probe: unicast to the gateway and multicast, on port 1900. */
export const upnpProbe: UpnpProbe = createUpnpProbe()

/**
 * Searches for the gateway's IGD and resolves with a ready client as soon as the first
 * description with a usable WAN service is confirmed. Every socket and timer stops when the
 * probe settles or `context.signal` aborts.
 */
async function probeUpnp (context: ProbeContext, options: ResolvedUpnpProbeOptions): Promise<UpnpClient> {
  if (context.signal.aborted) throw abortedBy(context.signal, () => 'upnp probe aborted')
  const probing = new AbortController()
  // Each description fetch (up to MAX_SSDP_LOCATIONS at once) and the search listen to it.
  allowManyListeners(probing.signal)
  // The most telling failure so far: a description problem beats an SSDP one.
  let descriptionProblem: Error | undefined
  let searchProblem: Error | undefined
  const problem = (): string => {
    const last = descriptionProblem ?? searchProblem
    return last === undefined ? `no SSDP answer from ${context.gateway}` : `last problem: ${last.message}`
  }

  return await new Promise<UpnpClient>((resolve, reject) => {
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const settle = (outcome: UpnpClient | Error): void => {
      if (settled) {
        if (!(outcome instanceof Error)) void outcome.close()
        return
      }
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      context.signal.removeEventListener('abort', onAbort)
      probing.abort(SETTLED)
      if (!(outcome instanceof Error)) {
        rememberGateway(context.gateway, context.localAddress,
          { location: outcome.descriptionUrl.href, serviceType: outcome.service.serviceType, controlUrl: outcome.service.controlUrl.href }, context.cacheFile)
        resolve(outcome)
      } else {
        reject(outcome)
      }
    }
    const onAbort = (): void => {
      settle(abortedBy(context.signal, () => `upnp: discovery stopped before a usable gateway answered (${problem()})`, descriptionProblem ?? searchProblem ?? context.signal.reason))
    }
    context.signal.addEventListener('abort', onAbort, { once: true })
    if (options.timeout !== undefined) {
      const timeout = options.timeout
      timer = setTimeout(() => {
        settle(new TimeoutError(`upnp: no usable gateway within ${timeout} ms (${problem()})`, { cause: descriptionProblem ?? searchProblem }))
      }, timeout)
    }

    // The gateway code (and saxes, node:net) loads when the gateway answers, or, if it is slow
    // to, after UPNP_PRELOAD_DELAY, while the answer is still on its way (miniupnpd waits ~50 ms):
    // not at once, since compiling it holds up the event loop, and when a PCP or NAT-PMP gateway
    // answers within a few ms discovery ends this probe first, so that path never compiles it.
    // Loading it only on the answer would add its ~5 ms to a process's first UPnP discovery.
    const preload = setTimeout(() => {
      loadGatewayCode().then(async (code) => { await code.preloadGatewayDependencies() }).catch(() => {})
    }, UPNP_PRELOAD_DELAY)
    preload.unref()
    probing.signal.addEventListener('abort', () => { clearTimeout(preload) }, { once: true })
    let searching = false
    const tryRemembered = (remembered: Recalled | undefined): void => {
      if (remembered === undefined || settled) return
      // A stale entry is no problem to report: the search goes on as if there had been none.
      connectToGateway({ location: remembered.location, announced: remembered.location, context, options, signal: probing.signal, service: remembered }).then(settle, (error: Error) => {
        debug('upnp: remembered gateway %s failed: %s', remembered.location.href, error.message)
        search()
      })
    }
    const search = (): void => {
      if (settled || searching) return
      searching = true
      startSsdpSearch({
        gateway: context.gateway,
        localAddress: context.localAddress,
        port: options.ssdpPort,
        multicast: options.multicast,
        schedule: options.searchSchedule,
        signal: probing.signal,
        onRefused: (error) => { settle(error) },
        onLocation: (location, announced, response) => {
          connectToGateway({ location, announced, response, context, options, signal: probing.signal }).then(settle, (error: Error) => {
            descriptionProblem = error
          })
        },
        onProblem: (error) => { searchProblem = error }
      })
    }
    // A gateway that worked before is tried at once with one GET, beside the search: whichever
    // confirms a usable gateway first wins. Remembered in this process, its GET gets a head start
    // of REMEMBERED_HEAD_START (the search's dozen datagrams would otherwise go out before its
    // connection is up), cut short if it fails; a router takes tens of ms to answer a search
    // anyway. From the cache file, the search starts while the file is read.
    const given = context.descriptionUrl
    const givenHost = given === undefined ? '' : hostOf(given)
    const inProcess = context.rememberGateway === false ? undefined : recalledInProcess(context.gateway, context.localAddress)
    if (given !== undefined && isIP(givenHost) === isIP(context.gateway)) {
      // The caller's URL, for a router that ignores M-SEARCH: fetched first, and the search only
      // if it fails (a router back from a reboot on another port). Only the gateway is trusted.
      if (!sameAddress(givenHost, context.gateway)) {
        settle(new InvalidArgumentError(`upnp: upnpDescriptionUrl ${given.href} names ${givenHost}, not the gateway ${context.gateway}; refused`))
        return
      }
      connectToGateway({ location: given, announced: given, context, options, signal: probing.signal }).then(settle, (error: Error) => {
        debug('upnp: description URL %s failed: %s', given.href, error.message)
        descriptionProblem = error
        search()
      })
    } else if (inProcess !== undefined) {
      tryRemembered(inProcess)
      const headStart = setTimeout(search, REMEMBERED_HEAD_START)
      probing.signal.addEventListener('abort', () => { clearTimeout(headStart) }, { once: true })
    } else {
      search()
      if (context.rememberGateway !== false && context.cacheFile !== undefined) {
        recallGateway(context.gateway, context.localAddress, context.cacheFile).then(tryRemembered, () => {})
      }
    }
  })
}


/** The gateway code (client.ts and what it imports), loaded once, on first need. */
const loadGatewayCode = loadOnce(async () => await import('./client.js'))

/** Fetches the description and builds the client, loading the code for it first. */
async function connectToGateway (location: GatewayLocation): Promise<UpnpClient> {
  return await (await loadGatewayCode()).connectToGateway(location)
}

/**
 * IPv6 discovery: the IGD is found as for IPv4 (SSDP, here unicast to the gateway's IPv6 address),
 * and must offer WANIPv6FirewallControl; its WAN connection services are not used. `options`
 * should name `sameRouter`'s sources: without them a LOCATION naming another address of the
 * gateway cannot be followed (src/protocols.ts gives this host's).
 */
export function createUpnpPinholeProbe (options: UpnpProbeOptions = {}): ProtocolProbe {
  const igdProbe = createUpnpProbe(options)
  return async (context) => await probePinholes(context, igdProbe)
}

async function probePinholes (context: ProbeContext, igdProbe: UpnpProbe): Promise<GatewayClient> {
  const igd = await igdProbe(context)
  const service = igd.firewallControl
  await igd.close()
  if (service === undefined) throw new UnsupportedError(`upnp: the IGD at ${context.gateway} offers no WANIPv6FirewallControl service`)
  // Loaded by the gateway code (the client's chunk, already in memory): one chunk fewer.
  const { UpnpPinholeClient } = await loadGatewayCode()
  return new UpnpPinholeClient({ gateway: context.gateway, localAddress: context.localAddress, zone: igd.zone, controlUrl: service.controlUrl, serviceType: service.serviceType })
}

/** How long a remembered gateway's GET goes ahead of the SSDP search (see probeUpnp). */
const REMEMBERED_HEAD_START = 2
/** How long the probe waits before loading the gateway code unasked (see probeUpnp). */
const UPNP_PRELOAD_DELAY = 20
