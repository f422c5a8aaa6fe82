import { EventEmitter } from '../builtins.js'
import { addressScope, type AddressScope, isIPv4 } from '../net/ip-address.js'
import { ClosedError, GatewayRefusesEverythingError, isUnexplainedFailure, TimeoutError, UnsupportedError } from '../errors.js'
import { listenToGatewayMulticast, type MulticastListener } from '../net/multicast.js'
import { resolveMappingOptions, type MappingOptions, type ResolvedDiscoverOptions } from '../options.js'
import { withDeadline } from './deadline.js'
import type { MappingEvents, NatEvents } from './events.js'
import type { GatewayClient, GatewayEvent, GatewayMappingEntry, NatType, ProbeRegistry, RequestOptions, TransportProtocol } from './gateway-client.js'
import { allowManyListeners, RequestLimiter } from './limiter.js'
import { Mapping, retryDelay, type MappingHost } from './mapping.js'
import { AnnouncementCheck } from './announcement-check.js'
import { RenewalClock } from './renewal-clock.js'
import { NatCounters, type NatStats } from './stats.js'
import { locateGateway, raceProbes, type DiscoveredGateway } from './probe.js'
import { debug } from '../debug.js'
import { monotonicMs } from '../net/clock.js'

/** Failed requests in a row after which the NAT looks for a gateway or protocol that works. */
const FAILURES_BEFORE_REDISCOVERY = 3
/** Unexplained refusals in a row (see GatewayRefusesEverythingError) after which the gateway is called stuck. */
const REFUSALS_BEFORE_STUCK = 3
/** Rediscovery runs at most this often while requests keep failing. */
const REDISCOVERY_MIN_INTERVAL = 5_000

/**
 * A NAT gateway and the mappings natmapper keeps open on it: a long-running service that renews
 * every mapping until the mapping or the NAT is closed, and repairs them when the gateway
 * restarts, changes its address, or is replaced by another. Created by discoverNAT().
 */
export class NAT extends EventEmitter<NatEvents> implements AsyncDisposable {
  #client: GatewayClient
  #news: MulticastListener | undefined
  readonly #options: ResolvedDiscoverOptions
  readonly #probes: ProbeRegistry
  readonly #limiter: RequestLimiter
  readonly #mappings = new Set<Mapping>()
  readonly #host: MappingHost
  #address: { value: string, at: number } | undefined
  #addressQuery: Promise<string> | undefined
  /**
   * The address queries that failed in a row, the last one's error, and until when (monotonicMs())
   * callers get that error instead of a new query: a refused port answers each query at once, so
   * without it every caller's poll would be a request (the soak's sampler, a status page).
   */
  #addressFailure: { failures: number, error: unknown, until: number } | undefined
  #addressTimer: NodeJS.Timeout | undefined
  #networkTimer: NodeJS.Timeout | undefined
  #failuresInARow = 0
  #refusalsInARow = 0
  #rediscovery: Promise<void> | undefined
  #lastRediscovery = 0
  #closing: Promise<void> | undefined
  readonly #announcementCheck: AnnouncementCheck
  /** Counts resets and address changes, so that a check can tell whether it found one. */
  #stateChanges = 0
  readonly #counters = new NatCounters()

  /** @internal Created by discoverNAT(). */
  constructor (discovered: DiscoveredGateway, options: ResolvedDiscoverOptions, probes: ProbeRegistry) {
    super()
    this.#options = options
    this.#probes = probes
    this.#limiter = new RequestLimiter(options.maxConcurrentRequests)
    this.#client = discovered.client
    this.#announcementCheck = new AnnouncementCheck({
      check: async () => await this.#checkGateway(),
      mappings: () => this.#mappings,
      unconfirmedReset: (reason) => { this.#reportReset(`${reason}, its epoch continuing: renewing every mapping, at a bounded pace`) }
    })
    this.#attach(discovered.client)
    if (discovered.externalAddress !== undefined) this.#address = { value: discovered.externalAddress, at: Date.now() }
    const currentClient = (): GatewayClient => this.#client
    const knownAddress = (): string | undefined => this.#address?.value
    this.#host = {
      nat: this,
      get client () { return currentClient() },
      get knownExternalAddress () { return knownAddress() },
      limiter: this.#limiter,
      clock: new RenewalClock(),
      mappingDuration: options.mappingDuration,
      cacheTime: options.cacheTime,
      requestTimeout: options.requestTimeout,
      externalAddress: async (requestOptions) => await this.externalAddress(requestOptions),
      noteExternalAddress: (address) => { this.#noteExternalAddress(address) },
      reportOutcome: (error) => { this.#reportOutcome(error) },
      // A gateway without a usable WAN address refuses with the same codes for a reason of its own.
      explainFailure: (error) => isUnexplainedFailure(error) && this.#refusalsInARow >= REFUSALS_BEFORE_STUCK && this.externalAddressScope !== 'unspecified'
        ? new GatewayRefusesEverythingError(error, this.#refusalsInARow)
        : error,
      emit: (event, ...args) => { this.#emitMappingEvent(event, ...args) },
      forget: (mapping) => {
        this.#mappings.delete(mapping)
        if (this.#mappings.size === 0) this.#stopWatching()
      }
    }
  }

  /** The protocol in use; it may change when the gateway stops speaking it or is replaced. */
  get type (): NatType {
    return this.#client.type
  }

  /** The gateway's address; it changes when the host moves to another network. */
  get gateway (): string {
    return this.#client.gateway
  }

  /** Our address on the link facing the gateway (the internal client of every mapping). */
  get localAddress (): string {
    return this.#client.localAddress
  }

  /**
   * Whether the last external address the gateway reported is publicly routable; false behind
   * another NAT (a private, shared 100.64/10 or unspecified address); undefined before we know.
   */
  get externalAddressIsPublic (): boolean | undefined {
    const scope = this.externalAddressScope
    return scope === undefined ? undefined : scope === 'public'
  }

  /** The kind of address the gateway last reported as its external one. */
  get externalAddressScope (): AddressScope | undefined {
    return this.#address === undefined ? undefined : addressScope(this.#address.value)
  }

  /**
   * Counters since this NAT was made, per protocol: requests, retransmissions, answers by result
   * code, timeouts, mapping events; gateway resets and changes; the time since the last
   * successful answer. A fresh plain object each call (counting itself allocates nothing).
   */
  stats (): NatStats {
    return this.#counters.snapshot(this.#options.family, this.type, this.gateway)
  }

  /** The most requests that were ever in flight toward the gateway at once. */
  get peakRequestsInFlight (): number {
    return this.#limiter.peak
  }

  /** Whether close() was called. */
  get closed (): boolean {
    return this.#closing !== undefined
  }

  /**
   * Maps `internalPort` on this host to an external port on the gateway and keeps it mapped.
   * Resolves after the first attempt whether or not the gateway granted it: ask the Mapping
   * (`established`, `externalAddr()`, `lastError`) or listen to its events for the current truth.
   */
  async newMapping (protocol: TransportProtocol, internalPort: number, options: MappingOptions = {}): Promise<Mapping> {
    const resolved = resolveMappingOptions(protocol, internalPort, options)
    if (this.closed) throw new ClosedError('NAT is closed')
    const mapping = new Mapping(this.#host, resolved)
    this.#mappings.add(mapping)
    this.#startWatching()
    await mapping.start({
      ...(resolved.signal === undefined ? {} : { signal: resolved.signal }),
      ...(resolved.timeout === undefined ? {} : { timeout: resolved.timeout })
    })
    return mapping
  }

  /** The mappings that are open (not closed) on this NAT. */
  mappings (): Mapping[] {
    return [...this.#mappings]
  }

  /**
   * The gateway's external address, cached for cacheTime; concurrent callers share one request.
   * After a failed request, callers get its error until the retry is due (1 s, doubling up to a
   * third of mappingDuration), so polling never asks faster than a mapping's retries.
   */
  async externalAddress (options: RequestOptions = {}): Promise<string> {
    if (this.closed) throw new ClosedError('NAT is closed')
    const cached = this.#address
    if (cached !== undefined && Date.now() - cached.at < this.#options.cacheTime) return cached.value
    const failed = this.#addressFailure
    if (failed !== undefined && monotonicMs() < failed.until) throw failed.error
    const query = this.#queryExternalAddress()
    // The shared query has its own bound; this caller may give up sooner without cancelling it.
    return await withDeadline('external address', options, async () => await query)
  }

  /**
   * Deletes a mapping this NAT object does not hold (made by another process or an earlier run).
   * Rejects with UnsupportedError where the protocol cannot (PCP ties a mapping to its creator's
   * nonce: only a mapping made with the same gatewayCacheFile can be deleted), and with
   * ForeignMappingError when the gateway's entry is another host's (UPnP deletes by external
   * port), unless `force`.
   */
  async deleteMapping (protocol: TransportProtocol, internalPort: number, options: RequestOptions & { externalPort?: number, force?: boolean } = {}): Promise<void> {
    const resolved = resolveMappingOptions(protocol, internalPort, { ...(options.externalPort === undefined ? {} : { externalPort: options.externalPort }) })
    if (this.closed) throw new ClosedError('NAT is closed')
    if (this.#client.deleteMapping === undefined) throw new UnsupportedError(`${this.type} cannot delete a mapping made by another client`)
    await this.#client.deleteMapping(resolved.protocol, resolved.internalPort, resolved.externalPort, { timeout: this.#options.requestTimeout, ...options })
  }

  /** The gateway's mapping table. Rejects with UnsupportedError where the protocol cannot list it (PCP, NAT-PMP). */
  async listGatewayMappings (options: RequestOptions = {}): Promise<GatewayMappingEntry[]> {
    if (this.closed) throw new ClosedError('NAT is closed')
    if (this.#client.listMappings === undefined) throw new UnsupportedError(`${this.type} gateways cannot list their mappings`)
    return await this.#client.listMappings({ timeout: this.#options.requestTimeout, ...options })
  }

  /** Deletes every mapping at the gateway (bounded by closeTimeout) and releases everything. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  /** close(), for `await using nat = await discoverNAT()`. */
  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  async #close (): Promise<void> {
    this.#stopWatching()
    this.#stopListening()
    this.#announcementCheck.close()
    const deadline = new AbortController()
    allowManyListeners(deadline.signal)
    const timer = setTimeout(() => { deadline.abort(new TimeoutError(`close: mappings not deleted within ${this.#options.closeTimeout} ms`)) }, this.#options.closeTimeout)
    try {
      await Promise.allSettled([...this.#mappings].map(async (mapping) => { await mapping.release(deadline.signal) }))
    } finally {
      clearTimeout(timer)
      this.#mappings.clear()
      // A rediscovery in flight ends by itself (its probes are bounded); it sees we are closed.
      await this.#client.close()
    }
  }

  /** Wires a client's unsolicited news to this NAT, and listens for its gateway's announcements. */
  #attach (client: GatewayClient): void {
    client.onEvent = (event) => { this.#onGatewayEvent(client, event) }
    client.countInto?.(this.#counters.byProtocol)
    this.#stopListening()
    // Announcements are multicast by a real gateway on our link; a gateway on loopback has none.
    if (!isIPv4(client.gateway) || client.gateway.startsWith('127.')) return
    if (client.newsGroup === undefined) return
    this.#news = listenToGatewayMulticast({
      ...client.newsGroup,
      gateway: client.gateway,
      localAddress: client.localAddress,
      // A client reads one kind of news: announcements (PCP, NAT-PMP) or NOTIFYs (UPnP).
      onMessage: (bytes) => { client.handleAnnouncement?.(bytes); client.handleNotify?.(bytes) }
    })
  }

  #stopListening (): void {
    this.#news?.close()
    this.#news = undefined
  }

  #onGatewayEvent (client: GatewayClient, event: GatewayEvent): void {
    if (client !== this.#client || this.closed) return
    if (event.kind === 'reset') {
      debug('gateway %s reset: %s', this.gateway, event.reason)
      this.#stateChanges++
      this.#reportReset(event.reason)
      this.#renewAll()
    } else if (event.kind === 'announcement') {
      debug('gateway %s: %s (epoch %s): checking', this.gateway, event.reason, event.epochContinues ? 'continues' : 'does not continue')
      this.#announcementCheck.announced(event.reason, event.epochContinues)
    } else {
      this.#noteExternalAddress(event.address)
    }
  }

  /** Every 'gateway-reset' event goes through here, so that the counter and the events agree. */
  #reportReset (reason: string): void {
    this.#counters.gatewayResets++
    this.emit('gateway-reset', { reason })
  }

  /** One request that shows whether the gateway reset or moved (see AnnouncementCheck); true if it did. */
  async #checkGateway (): Promise<boolean> {
    const client = this.#client
    if (client.checkGateway === undefined || this.#mappings.size === 0) return false
    const before = this.#stateChanges
    await this.#limiter.run(async () => { await client.checkGateway?.({ timeout: this.#options.requestTimeout }) }, undefined, 'urgent')
    return this.#stateChanges !== before
  }

  async #queryExternalAddress (): Promise<string> {
    this.#addressQuery ??= this.#limiter.run(async () =>
      await this.#client.externalAddress({ timeout: this.#options.requestTimeout })
    ).then((address) => {
      this.#noteExternalAddress(address)
      return address
    }, (error: unknown) => {
      const failures = (this.#addressFailure?.failures ?? 0) + 1
      this.#addressFailure = { failures, error, until: monotonicMs() + retryDelay(failures, this.#options.mappingDuration) }
      throw error
    }).finally(() => { this.#addressQuery = undefined })
    return await this.#addressQuery
  }

  #noteExternalAddress (address: string): void {
    const previous = this.#address?.value
    this.#address = { value: address, at: Date.now() }
    this.#addressFailure = undefined
    if (previous === undefined || previous === address) return
    this.#stateChanges++
    const scope = addressScope(address)
    this.emit('external-address-changed', { address, previous, scope, isPublic: scope === 'public' })
    for (const mapping of this.#mappings) mapping.externalAddressChanged(previous, address)
    // Mappings may have moved with the address (PCP reports it per mapping): ask for the truth.
    this.#renewAll()
  }

  #renewAll (): void {
    for (const mapping of this.#mappings) mapping.renewNow()
  }

  /** Counts failures in a row; enough of them make the NAT look for what works now. */
  #reportOutcome (error: Error | undefined): void {
    if (error === undefined) {
      this.#failuresInARow = 0
      this.#refusalsInARow = 0
      // The gateway answers again: an address query that failed before may be asked at once.
      this.#addressFailure = undefined
      return
    }
    this.#refusalsInARow = isUnexplainedFailure(error) ? this.#refusalsInARow + 1 : 0
    this.#failuresInARow++
    if (this.#failuresInARow >= FAILURES_BEFORE_REDISCOVERY) this.#rediscover(`${this.#failuresInARow} requests failed in a row, the last with ${error.message}`)
  }

  /**
   * While mappings exist: re-checks the external address every cacheTime (so a change is noticed
   * even when nobody asks), and the default route every networkCheckInterval (so a move to
   * another network is noticed). Both timers are unref'd: they never keep a process alive.
   */
  #startWatching (): void {
    if (this.#addressTimer === undefined && this.#options.cacheTime > 0) {
      const tick = (): void => {
        this.#addressTimer = setTimeout(() => {
          this.#checkExternalAddress()
          tick()
        }, Math.max(this.#options.cacheTime, 1_000)).unref()
      }
      tick()
    }
    if (this.#networkTimer === undefined && this.#options.gateway === undefined && this.#options.networkCheckInterval > 0) {
      const tick = (): void => {
        this.#networkTimer = setTimeout(() => {
          this.#checkNetwork().catch((error: unknown) => { debug('network check: %s', String(error)) }).finally(() => {
            if (this.#networkTimer !== undefined) tick()
          })
        }, this.#options.networkCheckInterval).unref()
      }
      tick()
    }
  }

  #stopWatching (): void {
    clearTimeout(this.#addressTimer)
    clearTimeout(this.#networkTimer)
    this.#addressTimer = undefined
    this.#networkTimer = undefined
  }

  #checkExternalAddress (): void {
    // PCP reports the address with each mapping: renewing one is the cheapest way to ask.
    const mapping = [...this.#mappings].find((each) => each.established && each.reportsAddress)
    if (mapping !== undefined) {
      mapping.renewNow()
    } else {
      this.#queryExternalAddress().catch((error: unknown) => { this.#reportOutcome(error instanceof Error ? error : new Error(String(error))) })
    }
  }

  async #checkNetwork (): Promise<void> {
    const location = await locateGateway({ ...this.#options, gateway: undefined })
    if (location.gateway !== this.gateway || location.localAddress !== this.localAddress) {
      this.#rediscover(`the default route now leads to ${location.gateway} from ${location.localAddress}`)
    }
  }

  /** Finds the gateway and protocol that work now; when they differ, moves every mapping there. */
  #rediscover (reason: string): void {
    if (this.closed || this.#rediscovery !== undefined || Date.now() - this.#lastRediscovery < REDISCOVERY_MIN_INTERVAL) return
    this.#lastRediscovery = Date.now()
    this.#rediscovery = (async () => {
      const location = await locateGateway(this.#options, true)
      const found = await raceProbes(location, { ...this.#options, signal: undefined }, this.#probes)
      if (this.closed || (found.client.type === this.type && found.client.gateway === this.gateway && found.client.localAddress === this.localAddress)) {
        await found.client.close()
        return
      }
      await this.#switchTo(found, reason)
    })().catch((error: unknown) => {
      debug('rediscovery (%s) found nothing better: %s', reason, String(error))
    }).finally(() => {
      this.#rediscovery = undefined
    })
  }

  async #switchTo (found: DiscoveredGateway, reason: string): Promise<void> {
    const previous = this.#client
    const previousType = this.type
    const previousGateway = this.gateway
    this.#client = found.client
    this.#attach(found.client)
    this.#address = found.externalAddress === undefined ? undefined : { value: found.externalAddress, at: Date.now() }
    this.#addressFailure = undefined
    this.#failuresInARow = 0
    this.#counters.gatewayChanges++
    this.emit('gateway-changed', { type: this.type, gateway: this.gateway, previousType, previousGateway, reason })
    const stale = [...this.#mappings].map((mapping) => mapping.moveToNewGateway())
    // The old gateway may be out of reach now; deleting there is a courtesy, bounded in time.
    await Promise.allSettled(stale.map(async (grant) => {
      if (grant !== undefined) await previous.unmap(grant, { timeout: this.#options.closeTimeout })
    }))
    await previous.close()
  }

  #emitMappingEvent<K extends keyof MappingEvents> (event: K, ...args: MappingEvents[K]): void {
    const mapping = args[0].mapping
    this.#counters.mappingEvent(this.#client.type, event, args)
    ;(mapping.emit as (event: K, ...args: MappingEvents[K]) => boolean)(event, ...args)
    ;(this.emit as (event: `mapping-${K}`, ...args: MappingEvents[K]) => boolean)(`mapping-${event}`, ...args)
  }
}
